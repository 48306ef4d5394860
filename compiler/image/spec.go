package image

import (
	"github.com/ftc-dev/ftc/compiler/key"
)

// Paths inside the image.
const (
	// Root holds everything ftc adds to the base.
	Root = "/opt/ftc"
	// SitePackages is where the locked Python dependencies are installed
	// (pip --target): a directory of ftc's own, so no distribution's
	// "externally managed" system Python is touched.
	SitePackages = Root + "/site-packages"
	// PythonDir holds the entrypoints package: PythonDir/ftc/...
	PythonDir = Root + "/python"
	// RecipeDir holds the recipe's own files, under their recipe paths.
	RecipeDir = Root + "/recipe"
	// RequirementsFile is the locked requirements with hashes that pip
	// installs from; it stays in the image as a record.
	RequirementsFile = Root + "/requirements.txt"
	// SdistRequirementsFile is the closure's sdists (SourceBuilt), built
	// after the wheels are installed.
	SdistRequirementsFile = Root + "/requirements-sdist.txt"
	// WheelsMount is where the builder mounts the wheel source (a local
	// wheel directory, or nothing when an index is used).
	WheelsMount = "/ftc/wheels"
)

// WheelsInput names the build input mounted at WheelsMount.
const WheelsInput = "wheels"

// Labels set on every image.
const (
	LabelRecipe  = "dev.ftc.recipe"
	LabelProfile = "dev.ftc.profile"
	LabelVersion = "dev.ftc.version"
)

// envVersion is the version of the environment key material. Bump it with
// any change to what the material holds or to how the builder turns a
// spec into LLB.
const envVersion = 1

// Spec is everything needed to build a recipe's image.
type Spec struct {
	Platform Platform `json:"platform"`
	// Epoch is the time, in seconds since 1970, that every timestamp of
	// the image (file mtimes, history, created) is set to.
	Epoch       int64       `json:"epoch"`
	Environment Environment `json:"environment"`
	// Layers are the ftc layers, appended in order to the environment.
	Layers []Layer `json:"layers"`
	// Config is applied on top of the environment image's config.
	Config Config `json:"config"`
}

// Platform is an OCI platform.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
}

func (p Platform) String() string { return p.OS + "/" + p.Architecture }

// Environment is the environment image: a base by digest and the steps run
// on it.
type Environment struct {
	// Base is "ref@sha256:…".
	Base    string `json:"base"`
	Profile string `json:"profile"`
	Steps   []Step `json:"steps"`
	// Config is applied on top of the base image's config.
	Config Config `json:"config"`
	// Packages are the installed Python distributions (the lock's
	// closure), for the SBOM.
	Packages []Package `json:"packages"`
}

// Step is one build step: a file written or a command run.
type Step struct {
	// Name is shown in progress output and the image history.
	Name string `json:"name"`
	File *File  `json:"file,omitempty"`
	Run  *Run   `json:"run,omitempty"`
}

// File is a regular file in the image.
type File struct {
	Path    string `json:"path"`
	Mode    uint32 `json:"mode"`
	Content []byte `json:"content"`
}

// Run is a command run in the image being built.
type Run struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	// Mounts are build inputs mounted read-only.
	Mounts []Mount `json:"mounts"`
}

// Mount mounts a named build input. Inputs are identified by what the
// step verifies (wheel hashes), not by where the builder finds them, so
// the same spec builds from a wheel directory or an index alike.
type Mount struct {
	Input  string `json:"input"`
	Target string `json:"target"`
}

// Layer is one ftc layer: files under their absolute paths. Parent
// directories are implied.
type Layer struct {
	Name  string `json:"name"`
	Files []File `json:"files"`
}

// Config is what a tier changes in the image config.
type Config struct {
	// Env sets variables (KEY=VALUE), replacing earlier values.
	Env []string `json:"env,omitempty"`
	// PathPrefix is prepended to PATH.
	PathPrefix []string `json:"pathPrefix,omitempty"`
	// Cmd replaces the default command when set; the base's entrypoint is
	// kept (NVIDIA's images wrap commands in one that execs its arguments),
	// so `docker run IMAGE torchrun …` runs a stage's launch argv unchanged.
	Cmd    []string          `json:"cmd,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Package is a locked Python distribution.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Hashes are "sha256:<hex>" digests of acceptable wheels, or of the
	// sdist when Sdist is set.
	Hashes []string `json:"hashes"`
	// Sdist is set for a distribution of SourceBuilt, locked by its sdist
	// and built at install.
	Sdist bool `json:"sdist,omitempty"`
}

// EnvironmentKey is the content key of the environment image: equal keys
// build equal images, so an image built once is reused by every recipe
// with the same environment.
func (s *Spec) EnvironmentKey() (key.Key, error) {
	e := s.Environment
	return key.Of(key.DomainImageEnvironment, envVersion, struct {
		Platform Platform `json:"platform"`
		Epoch    int64    `json:"epoch"`
		Base     string   `json:"base"`
		Steps    []Step   `json:"steps"`
		Config   Config   `json:"config"`
	}{s.Platform, s.Epoch, e.Base, e.Steps, e.Config})
}
