package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
)

// errorReply is the JSON of a refused request. Its error field is the one
// of SnapshotRequestReply, so a client reads either the same way.
type errorReply struct {
	Error string `json:"error"`
}

// requireToken makes every mutating request (any method but GET, HEAD and
// OPTIONS) carry "Authorization: Bearer <token>". Read-only requests pass.
// With an empty token every request passes: the config refuses an empty
// token off loopback.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	// Comparing digests of equal length keeps the comparison's time
	// independent of the token's length and content.
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		given, ok := bearer(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(given))
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="liberator"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			msg := "a missing or wrong token: send Authorization: Bearer <http.token>"
			_ = json.NewEncoder(w).Encode(errorReply{Error: msg})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer returns the token of an Authorization header "Bearer <token>".
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
