package key

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// Key is a content key: "sha256:" followed by 64 hex digits.
type Key string

// Short is the first 12 hex digits, for display.
func (k Key) Short() string {
	s := strings.TrimPrefix(string(k), "sha256:")
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// Hex is the digest without its algorithm prefix.
func (k Key) Hex() string { return strings.TrimPrefix(string(k), "sha256:") }

// Domains separate keys of different kinds of things, so equal materials
// of different kinds never collide.
const (
	DomainStage       = "ftc/stage"
	DomainEnvironment = "ftc/environment"
	// DomainFoundEnvironment keys a local environment that differs from
	// the recipe's profile (the versions a probe found): never equal to a
	// profile's key.
	DomainFoundEnvironment = "ftc/environment/found"
	DomainResume           = "ftc/resume"
	// DomainImageEnvironment keys environment images (base by digest,
	// locked Python dependencies, build steps): equal keys, equal images.
	DomainImageEnvironment = "ftc/image/environment"
)

// Of computes the key of material in domain at version.
func Of(domain string, version int, material any) (Key, error) {
	b, err := Canonical(material)
	if err != nil {
		return "", fmt.Errorf("encoding %s key material: %w", domain, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00v%d\x00", domain, version)
	h.Write(b)
	return Key("sha256:" + hex.EncodeToString(h.Sum(nil))), nil
}

// Canonical encodes v as canonical JSON. Struct field order and map
// iteration cannot leak into it: the value is re-decoded into generic maps
// (whose keys encoding/json sorts) with numbers kept as written.
func Canonical(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(generic); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
