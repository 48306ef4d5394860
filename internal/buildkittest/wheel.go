package buildkittest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Wheel writes a small pure-Python wheel, dist-version-py3-none-any.whl,
// into dir: the given files (path → content) plus the dist-info that pip
// requires (METADATA, WHEEL, RECORD with hashes). The zip has fixed times,
// so the same files give the same wheel and the same sha256. It returns
// the wheel's path.
func Wheel(dir, dist, version string, files map[string]string) (string, error) {
	return WheelRequires(dir, dist, version, nil, files)
}

// WheelRequires is Wheel with Requires-Dist lines (PEP 508 requirements).
func WheelRequires(dir, dist, version string, requires []string, files map[string]string) (string, error) {
	norm := strings.ToLower(strings.NewReplacer("-", "_", ".", "_").Replace(dist))
	info := fmt.Sprintf("%s-%s.dist-info", norm, version)
	all := map[string]string{}
	for p, c := range files {
		all[p] = c
	}
	meta := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: test wheel made by ftc's tests\n", dist, version)
	for _, r := range requires {
		meta += "Requires-Dist: " + r + "\n"
	}
	all[info+"/METADATA"] = meta
	all[info+"/WHEEL"] = "Wheel-Version: 1.0\nGenerator: ftc-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
	var names []string
	for p := range all {
		names = append(names, p)
	}
	sort.Strings(names)
	var record strings.Builder
	for _, p := range names {
		sum := sha256.Sum256([]byte(all[p]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", p, base64.RawURLEncoding.EncodeToString(sum[:]), len(all[p]))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", info)
	all[info+"/RECORD"] = record.String()
	names = append(names, info+"/RECORD")

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, p := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: p, Method: zip.Deflate, Modified: time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return "", err
		}
		if _, err := w.Write([]byte(all[p])); err != nil {
			return "", err
		}
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", norm, version))
	return path, os.WriteFile(path, buf.Bytes(), 0o644)
}
