package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ftc-dev/ftc/compiler/image"
)

// DefaultIndexURL is pip's default index, where ftc lock finds sdists
// when neither --index-url nor --wheels is given.
const DefaultIndexURL = "https://pypi.org/simple"

// sdist is one sdist ftc locks (image.SourceBuilt): its file's sha256 and
// the runtime dependencies its PKG-INFO declares (extras left out).
type sdist struct {
	SHA256   string
	Requires []string
}

// sdistFileNames are the names an sdist of name==version may have on an
// index: as the project spells it, and normalized (PEP 625).
func sdistFileNames(name, version string) []string {
	n := image.Normalize(name)
	return []string{
		strings.ToLower(name) + "-" + version + ".tar.gz",
		strings.ReplaceAll(n, "-", "_") + "-" + version + ".tar.gz",
		n + "-" + version + ".tar.gz",
	}
}

// fetchSdist finds name==version's sdist in the wheel directory, or on the
// index (PEP 503 simple page; the file must carry a sha256 fragment and
// match it), and reads it.
func fetchSdist(ctx context.Context, name, version, indexURL, wheels string) (*sdist, error) {
	names := sdistFileNames(name, version)
	if wheels != "" {
		for _, n := range names {
			b, err := os.ReadFile(filepath.Join(wheels, n))
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				return nil, err
			}
			return readSdist(name, version, b)
		}
		return nil, fmt.Errorf("%s==%s is built from its sdist, and %s has none of %s", name, version, wheels, strings.Join(names, ", "))
	}
	if indexURL == "" {
		indexURL = DefaultIndexURL
	}
	page := strings.TrimSuffix(indexURL, "/") + "/" + image.Normalize(name) + "/"
	body, err := httpGet(ctx, page, 16<<20)
	if err != nil {
		return nil, fmt.Errorf("finding the sdist of %s==%s: %w", name, version, err)
	}
	href, want, err := sdistLink(body, names)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", page, err)
	}
	base, _ := url.Parse(page)
	u, err := base.Parse(href)
	if err != nil {
		return nil, fmt.Errorf("%s: link %q: %w", page, href, err)
	}
	u.Fragment = ""
	b, err := httpGet(ctx, u.String(), 1<<30)
	if err != nil {
		return nil, fmt.Errorf("downloading the sdist of %s==%s: %w", name, version, err)
	}
	s, err := readSdist(name, version, b)
	if err != nil {
		return nil, err
	}
	if s.SHA256 != want {
		return nil, fmt.Errorf("%s: sha256 %s, the index says %s", u, s.SHA256, want)
	}
	return s, nil
}

var anchorRE = regexp.MustCompile(`(?i)<a\s[^>]*href="([^"]+)"`)

// sdistLink is the link to one of names on a simple page, and the sha256
// its fragment gives.
func sdistLink(page []byte, names []string) (href, sha string, err error) {
	for _, m := range anchorRE.FindAllSubmatch(page, -1) {
		h := strings.ReplaceAll(string(m[1]), "&amp;", "&")
		file, frag, _ := strings.Cut(h, "#")
		file = path.Base(strings.SplitN(file, "?", 2)[0])
		for _, n := range names {
			if strings.EqualFold(file, n) {
				v, ok := strings.CutPrefix(frag, "sha256=")
				if !ok || len(v) != 64 {
					return "", "", fmt.Errorf("the link to %s has no sha256", file)
				}
				return h, strings.ToLower(v), nil
			}
		}
	}
	return "", "", fmt.Errorf("no sdist %s", names[0])
}

func httpGet(ctx context.Context, u string, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/html")
	resp, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}

// readSdist hashes an sdist and reads the Requires-Dist of its top-level
// PKG-INFO, leaving out what only an extra asks for.
func readSdist(name, version string, b []byte) (*sdist, error) {
	sum := sha256.Sum256(b)
	s := &sdist{SHA256: hex.EncodeToString(sum[:])}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("sdist of %s==%s: %w", name, version, err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("sdist of %s==%s has no PKG-INFO", name, version)
		} else if err != nil {
			return nil, fmt.Errorf("sdist of %s==%s: %w", name, version, err)
		}
		if dir, file := path.Split(path.Clean(h.Name)); file != "PKG-INFO" || strings.Count(dir, "/") != 1 {
			continue
		}
		meta, err := io.ReadAll(io.LimitReader(tr, 16<<20))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(meta))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				break // the headers end; the description follows
			}
			if v, ok := strings.CutPrefix(line, "Version: "); ok && v != version {
				return nil, fmt.Errorf("sdist of %s==%s says version %s", name, version, v)
			}
			if v, ok := strings.CutPrefix(line, "Requires-Dist: "); ok && !strings.Contains(v, "extra ==") {
				s.Requires = append(s.Requires, strings.TrimSpace(v))
			}
		}
		return s, sc.Err()
	}
}

// ResolvePythonLocal resolves requirements as ResolvePython does (pip's
// resolver, wheels only, the closure with each wheel's sha256 from pip's
// installation report), without BuildKit: pip runs here, for t's Python
// version and platforms. A requirement of image.SourceBuilt is locked by
// its sdist's sha256 instead, and its dependencies (the sdist's and its
// entry's) and build backend are resolved with the wheels. The result is
// sorted by normalized name.
func ResolvePythonLocal(ctx context.Context, reqs []image.Requirement, t LocalTarget) ([]image.Package, error) {
	var in bytes.Buffer
	var sdists []image.Package
	for _, q := range reqs {
		b, ok := image.SourceBuilt(q.Name)
		if !ok {
			in.Write(image.RequirementsIn([]image.Requirement{q}))
			continue
		}
		s, err := fetchSdist(ctx, q.Name, q.Version, t.IndexURL, t.Wheels)
		if err != nil {
			return nil, err
		}
		for _, r := range append(append(append([]string(nil), s.Requires...), b.Requires...), b.Build...) {
			fmt.Fprintf(&in, "%s\n", r)
		}
		sdists = append(sdists, image.Package{Name: q.Name, Version: q.Version, Hashes: []string{"sha256:" + s.SHA256}, Sdist: true})
	}
	pkgs, err := resolveWheelsLocal(ctx, in.Bytes(), t)
	if err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		if _, ok := image.SourceBuilt(p.Name); ok {
			return nil, fmt.Errorf("resolving Python packages: pip chose a wheel of %s==%s, which ftc builds from its sdist", p.Name, p.Version)
		}
	}
	pkgs = append(pkgs, sdists...)
	sortPackages(pkgs)
	return pkgs, nil
}
