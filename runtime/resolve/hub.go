package resolve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ftc-dev/ftc/compiler/ident"
)

// Hub resolves revisions through the Hugging Face Hub API.
type Hub struct {
	// Endpoint is the Hub's base URL (HF_ENDPOINT), e.g.
	// https://huggingface.co.
	Endpoint string
	// Token authenticates for gated repositories. It is sent to the
	// endpoint only and never stored or logged.
	Token  string
	Client *http.Client
}

// get sends a GET to the endpoint, with the token when there is one.
func (h *Hub) get(ctx context.Context, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	return c.Do(req)
}

// Commit returns the commit of ref.
func (h *Hub) Commit(ctx context.Context, ref Ref) (string, error) {
	kind := "models"
	if ref.Kind == "dataset" {
		kind = "datasets"
	}
	u := fmt.Sprintf("%s/api/%s/%s/revision/%s", strings.TrimRight(h.Endpoint, "/"), kind, ref.Repo, url.PathEscape(ref.Revision))
	resp, err := h.get(ctx, u)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("resolving %s: the Hub answered %s", ref, resp.Status)
	}
	var body struct {
		SHA string `json:"sha"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return "", fmt.Errorf("resolving %s: %w", ref, err)
	}
	if !ident.IsCommit(body.SHA) {
		return "", fmt.Errorf("resolving %s: the Hub returned %q, not a commit", ref, body.SHA)
	}
	return body.SHA, nil
}

// maxConfig bounds a config.json read from the Hub.
const maxConfig = 4 << 20

// Config returns the config.json of a model at a commit.
func (h *Hub) Config(ctx context.Context, repo, commit string) ([]byte, error) {
	u := fmt.Sprintf("%s/%s/resolve/%s/config.json", strings.TrimRight(h.Endpoint, "/"), repo, url.PathEscape(commit))
	resp, err := h.get(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("reading config.json of %s@%s: %w", repo, commit, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading config.json of %s@%s: the Hub answered %s", repo, commit, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxConfig+1))
	if err != nil {
		return nil, fmt.Errorf("reading config.json of %s@%s: %w", repo, commit, err)
	}
	if len(b) > maxConfig {
		return nil, fmt.Errorf("reading config.json of %s@%s: larger than %d bytes", repo, commit, maxConfig)
	}
	return b, nil
}
