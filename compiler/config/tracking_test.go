package config

import "testing"

// serverAddress reads what vet needs of an MLflow address by hand (the
// compiler keeps out of net/url): the scheme, the host without port or
// brackets, and user information, which vet refuses.
func TestServerAddress(t *testing.T) {
	for _, c := range []struct {
		uri, scheme, host string
		user, ok          bool
	}{
		{"http://127.0.0.1:5000", "http", "127.0.0.1", false, true},
		{"https://mlflow.example.com/prefix?x=1", "https", "mlflow.example.com", false, true},
		{"https://me:pw@mlflow.example.com", "https", "mlflow.example.com", true, true},
		{"https://me@host/a@b", "https", "host", true, true},
		{"http://host/a@b", "http", "host", false, true},
		{"http://[::1]:5000/", "http", "::1", false, true},
		{"http://[::1", "", "", false, false},
		{"file:./mlruns", "", "", false, false},
		{"ftp://host", "", "", false, false},
		{"http://", "", "", false, false},
		{"http://:5000", "", "", false, false},
		{"http://host name", "", "", false, false},
		{"mlruns", "", "", false, false},
	} {
		scheme, host, user, ok := serverAddress(c.uri)
		if scheme != c.scheme && c.ok || host != c.host || user != c.user || ok != c.ok {
			t.Errorf("serverAddress(%q) = %q, %q, %v, %v; want %q, %q, %v, %v", c.uri, scheme, host, user, ok, c.scheme, c.host, c.user, c.ok)
		}
	}
	for host, want := range map[string]bool{"localhost": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true, "mlflow.example.com": false, "10.0.0.1": false} {
		if loopback(host) != want {
			t.Errorf("loopback(%q) = %v", host, !want)
		}
	}
}
