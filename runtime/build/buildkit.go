package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	dockerconfig "github.com/docker/cli/cli/config"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	// Builders in containers: docker-container://NAME (a `docker buildx
	// create --driver docker-container` builder) and podman-container://NAME.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/podmancontainer"

	"github.com/ftc-dev/ftc/compiler/image"
)

// DefaultAddress is where buildkitd listens when run as root without
// flags.
const DefaultAddress = "unix:///run/buildkit/buildkitd.sock"

// Address picks the BuildKit address: the flag, $BUILDKIT_HOST, or the
// default socket.
func Address(flag string) string {
	if flag != "" {
		return flag
	}
	if a := os.Getenv("BUILDKIT_HOST"); a != "" {
		return a
	}
	return DefaultAddress
}

// connect opens a client and checks the daemon answers, so a missing
// daemon is one clear error instead of a failed solve.
func connect(ctx context.Context, addr string) (*bkclient.Client, error) {
	c, err := bkclient.New(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("buildkit at %s: %w", addr, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := c.ListWorkers(cctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("cannot reach BuildKit at %s (start buildkitd, or pass --buildkit ADDR / set BUILDKIT_HOST): %w", addr, err)
	}
	return c, nil
}

func ociPlatform(p image.Platform) ocispecs.Platform {
	return ocispecs.Platform{OS: p.OS, Architecture: p.Architecture}
}

// source says where wheels come from: a local directory mounted into the
// build (installs run without network), or an index (pip's default,
// PyPI, when both are empty).
type source struct {
	wheels   string
	indexURL string
	// noCache makes BuildKit run the steps again instead of reusing its
	// own cache (--no-cache).
	noCache bool
}

func (s source) solveOpt(opt *bkclient.SolveOpt) error {
	if s.wheels == "" {
		return nil
	}
	fs, err := fsutil.NewFS(s.wheels)
	if err != nil {
		return fmt.Errorf("wheel directory %s: %w", s.wheels, err)
	}
	opt.LocalMounts = map[string]fsutil.FS{image.WheelsInput: fs}
	return nil
}

// runOptions turns a spec step into LLB run options: its mounts from the
// source, and the network off when wheels are local, so an install cannot
// quietly reach an index.
func (s source) runOptions(r image.Run) []llb.RunOption {
	opts := []llb.RunOption{llb.Args(r.Args)}
	if s.noCache {
		opts = append(opts, llb.IgnoreCache)
	}
	for _, e := range r.Env {
		k, v, _ := strings.Cut(e, "=")
		opts = append(opts, llb.AddEnv(k, v))
	}
	if s.wheels != "" {
		opts = append(opts, llb.AddEnv("PIP_NO_INDEX", "1"), llb.Network(llb.NetModeNone))
	} else if s.indexURL != "" {
		opts = append(opts, llb.AddEnv("PIP_INDEX_URL", s.indexURL))
	}
	for _, m := range r.Mounts {
		st := llb.Scratch()
		if m.Input == image.WheelsInput && s.wheels != "" {
			st = llb.Local(image.WheelsInput, llb.IncludePatterns(wheelPatterns()), llb.SharedKeyHint("ftc-wheels"))
		}
		opts = append(opts, llb.AddMount(m.Target, st, llb.Readonly))
	}
	return opts
}

// baseState resolves the base image's config through the gateway and
// returns the base as an LLB state with that config applied (env,
// working directory), and the config itself.
func baseState(ctx context.Context, gw gateway.Client, ref string, p image.Platform) (llb.State, []byte, error) {
	plat := ociPlatform(p)
	_, _, cfg, err := gw.ResolveImageConfig(ctx, ref, sourceresolver.Opt{
		LogName:  "resolve " + ref,
		ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &plat, ResolveMode: llb.ResolveModeDefault.String()},
	})
	if err != nil {
		return llb.State{}, nil, fmt.Errorf("base image %s: %w", ref, err)
	}
	st, err := llb.Image(ref, llb.Platform(plat), llb.WithCustomName("base "+ref)).WithImageConfig(cfg)
	if err != nil {
		return llb.State{}, nil, fmt.Errorf("base image %s config: %w", ref, err)
	}
	return st, cfg, nil
}

// envState adds the spec's steps to the base.
func envState(st llb.State, steps []image.Step, epoch time.Time, src source) llb.State {
	for _, s := range steps {
		switch {
		case s.File != nil:
			f := s.File
			opts := []llb.ConstraintsOpt{llb.WithCustomName(s.Name)}
			if src.noCache {
				opts = append(opts, llb.IgnoreCache)
			}
			st = st.File(llb.Mkdir(path.Dir(f.Path), 0o755, llb.WithParents(true), llb.WithCreatedTime(epoch)).
				Mkfile(f.Path, os.FileMode(f.Mode), f.Content, llb.WithCreatedTime(epoch)), opts...)
		case s.Run != nil:
			st = st.Run(append(src.runOptions(*s.Run), llb.WithCustomName(s.Name))...).Root()
		}
	}
	return st
}

// envConfig is the environment image's config: the base's, with the
// spec's changes, created at the epoch, one history entry per step.
func envConfig(baseCfg []byte, spec *image.Spec) ([]byte, error) {
	var img dockerspec.DockerOCIImage
	if err := json.Unmarshal(baseCfg, &img); err != nil {
		return nil, fmt.Errorf("base image config: %w", err)
	}
	c := spec.Environment.Config
	img.Config.Env = applyEnv(img.Config.Env, c)
	img.Config.Labels = applyLabels(img.Config.Labels, c.Labels)
	if len(c.Cmd) > 0 {
		img.Config.Cmd = c.Cmd
	}
	epoch := time.Unix(spec.Epoch, 0).UTC()
	img.Created = &epoch
	for _, s := range spec.Environment.Steps {
		img.History = append(img.History, ocispecs.History{Created: &epoch, CreatedBy: "ftc: " + s.Name, Comment: "ftc"})
	}
	return json.Marshal(img)
}

// exportAttrs make BuildKit's OCI export reproducible: every timestamp
// (created, history, file mtimes in new layers) becomes the epoch.
func exportAttrs(epoch int64) map[string]string {
	return map[string]string{
		"tar":               "false",
		"oci-mediatypes":    "true",
		"source-date-epoch": strconv.FormatInt(epoch, 10),
		"rewrite-timestamp": "true",
		"name":              "environment",
	}
}

// solveEnvironment builds the environment image into an OCI layout at
// dir.
func solveEnvironment(ctx context.Context, c *bkclient.Client, spec *image.Spec, src source, dir string, progress io.Writer, mode string) error {
	opt := bkclient.SolveOpt{
		Exports: []bkclient.ExportEntry{{Type: bkclient.ExporterOCI, OutputDir: dir, Attrs: exportAttrs(spec.Epoch)}},
	}
	if err := src.solveOpt(&opt); err != nil {
		return err
	}
	epoch := time.Unix(spec.Epoch, 0).UTC()
	build := func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		st, baseCfg, err := baseState(ctx, gw, spec.Environment.Base, spec.Platform)
		if err != nil {
			return nil, err
		}
		st = envState(st, spec.Environment.Steps, epoch, src)
		def, err := st.Marshal(ctx, llb.Platform(ociPlatform(spec.Platform)))
		if err != nil {
			return nil, err
		}
		res, err := gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		cfg, err := envConfig(baseCfg, spec)
		if err != nil {
			return nil, err
		}
		res.AddMeta(exptypes.ExporterImageConfigKey, cfg)
		// With the base's config, the exporter knows which layers are the
		// base's and keeps them as they are (rewrite-timestamp rewrites
		// only the layers the steps made), so the base's blobs stay
		// shared with the base image in registries and on nodes.
		res.AddMeta(exptypes.ExporterImageBaseConfigKey, baseCfg)
		return res, nil
	}
	return runBuild(ctx, c, opt, build, progress, mode)
}

// runBuild runs a gateway build with a progress display.
func runBuild(ctx context.Context, c *bkclient.Client, opt bkclient.SolveOpt, build gateway.BuildFunc, progress io.Writer, mode string) error {
	if progress == nil {
		progress, mode = io.Discard, string(progressui.QuietMode)
	}
	if mode == "" {
		mode = string(progressui.AutoMode)
	}
	d, err := progressui.NewDisplay(progress, progressui.DisplayMode(mode))
	if err != nil {
		return err
	}
	// The daemon pulls the base with the docker config's credentials,
	// as ftc pushes with them.
	opt.Session = append(opt.Session, authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(dockerconfig.LoadDefaultConfigFile(io.Discard)),
	}))
	ch := make(chan *bkclient.SolveStatus)
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		_, err := c.Build(ectx, opt, "ftc", build, ch)
		return err
	})
	eg.Go(func() error {
		_, err := d.UpdateFrom(context.WithoutCancel(ectx), ch)
		return err
	})
	return eg.Wait()
}

// pipReport is the part of pip's installation report (`pip install
// --dry-run --report`) ftc reads.
type pipReport struct {
	Install []struct {
		Metadata struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"metadata"`
		DownloadInfo struct {
			URL         string `json:"url"`
			ArchiveInfo struct {
				Hash   string            `json:"hash"`
				Hashes map[string]string `json:"hashes"`
			} `json:"archive_info"`
		} `json:"download_info"`
	} `json:"install"`
}

// resolvePython runs pip's resolver in the base image and returns its
// report.
func resolvePython(ctx context.Context, c *bkclient.Client, base string, p image.Platform, reqs []image.Requirement, src source, progress io.Writer, mode string) ([]byte, error) {
	out, err := os.MkdirTemp("", "ftc-resolve-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(out)
	opt := bkclient.SolveOpt{Exports: []bkclient.ExportEntry{{Type: bkclient.ExporterLocal, OutputDir: out}}}
	if err := src.solveOpt(&opt); err != nil {
		return nil, err
	}
	const reqsPath, outDir = "/ftc/requirements.in", "/ftc/out"
	build := func(ctx context.Context, gw gateway.Client) (*gateway.Result, error) {
		st, _, err := baseState(ctx, gw, base, p)
		if err != nil {
			return nil, err
		}
		st = st.File(llb.Mkdir("/ftc", 0o755, llb.WithParents(true)).Mkfile(reqsPath, 0o644, image.RequirementsIn(reqs)), llb.WithCustomName("requirements"))
		r := image.ResolveStep(reqsPath, outDir+"/report.json")
		run := st.Run(append(src.runOptions(r), llb.AddMount(outDir, llb.Scratch()), llb.WithCustomName("resolve Python packages"))...)
		def, err := run.GetMount(outDir).Marshal(ctx, llb.Platform(ociPlatform(p)))
		if err != nil {
			return nil, err
		}
		return gw.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
	}
	if err := runBuild(ctx, c, opt, build, progress, mode); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path.Join(out, "report.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("pip wrote no report (is pip ≥ 22.2 in the base image?)")
	}
	return b, err
}

// wheelPatterns are the files of a wheel directory a build reads: the
// wheels, and the sdists of the distributions ftc builds from source
// (image.SourceBuilt), which pip takes from the same directory.
func wheelPatterns() []string {
	out := []string{"*.whl"}
	for _, n := range image.SourceBuiltNames() {
		for _, f := range sdistFileNames(n, "*") {
			out = append(out, f)
		}
	}
	return out
}
