// Command testserver is the certissuer e2e test's HTTPS server: the API
// server calls it as a validating webhook, a mutating webhook, a CRD
// conversion webhook and an aggregated API (APIService). Its serving
// certificate is a Secret certissuer issued; the API server can reach it
// only through the CA bundles certissuer injected. Each endpoint does the
// least that makes its call visible:
//
//   - /validate denies ConfigMaps whose data has the key "deny";
//   - /mutate labels objects certissuer-e2e/mutated=true;
//   - /convert sets each object's apiVersion to the requested one;
//   - /apis/<group>/<version> answers an empty resource list.
package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", ":8443", "listen address")
	certFile := flag.String("cert", "/tls/tls.crt", "serving certificate")
	keyFile := flag.String("key", "/tls/tls.key", "serving key")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	mux := http.NewServeMux()
	mux.HandleFunc("POST /validate", review(log, validate))
	mux.HandleFunc("POST /mutate", review(log, mutate))
	mux.HandleFunc("POST /convert", convert(log))
	mux.HandleFunc("GET /apis/{group}/{version}", func(w http.ResponseWriter, r *http.Request) {
		log.Info("discovery", "path", r.URL.Path)
		writeJSON(w, map[string]any{"kind": "APIResourceList", "apiVersion": "v1",
			"groupVersion": r.PathValue("group") + "/" + r.PathValue("version"), "resources": []any{}})
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })

	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{
			MinVersion: tls.VersionTLS12,
			// Read at every handshake: a renewed Secret is served as soon as
			// the kubelet updates the volume.
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				c, err := tls.LoadX509KeyPair(*certFile, *keyFile)
				return &c, err
			},
		},
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("listening", "addr", *addr)
	if err := srv.ListenAndServeTLS("", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("serve", "error", err)
		os.Exit(1)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

type admissionRequest struct {
	UID    string         `json:"uid"`
	Kind   map[string]any `json:"kind"`
	Name   string         `json:"name"`
	Object struct {
		Data     map[string]string `json:"data"`
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	} `json:"object"`
}

// review decodes an AdmissionReview and answers with decide's response.
func review(log *slog.Logger, decide func(admissionRequest) map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			APIVersion string           `json:"apiVersion"`
			Request    admissionRequest `json:"request"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		resp := decide(in.Request)
		resp["uid"] = in.Request.UID
		log.Info("admission review", "path", r.URL.Path, "kind", in.Request.Kind["kind"], "name", in.Request.Name, "allowed", resp["allowed"])
		writeJSON(w, map[string]any{"apiVersion": in.APIVersion, "kind": "AdmissionReview", "response": resp})
	}
}

func validate(req admissionRequest) map[string]any {
	if _, ok := req.Object.Data["deny"]; ok {
		return map[string]any{"allowed": false, "status": map[string]any{"code": 403, "message": "denied by the certissuer e2e webhook"}}
	}
	return map[string]any{"allowed": true}
}

func mutate(req admissionRequest) map[string]any {
	var patch []map[string]any
	if req.Object.Metadata.Labels == nil {
		patch = append(patch, map[string]any{"op": "add", "path": "/metadata/labels", "value": map[string]string{}})
	}
	patch = append(patch, map[string]any{"op": "add", "path": "/metadata/labels/certissuer-e2e~1mutated", "value": "true"})
	b, _ := json.Marshal(patch)
	return map[string]any{"allowed": true, "patchType": "JSONPatch", "patch": base64.StdEncoding.EncodeToString(b)}
}

func convert(log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			APIVersion string `json:"apiVersion"`
			Request    struct {
				UID               string           `json:"uid"`
				DesiredAPIVersion string           `json:"desiredAPIVersion"`
				Objects           []map[string]any `json:"objects"`
			} `json:"request"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out := make([]map[string]any, 0, len(in.Request.Objects))
		for _, o := range in.Request.Objects {
			o["apiVersion"] = in.Request.DesiredAPIVersion
			out = append(out, o)
		}
		log.Info("conversion review", "to", in.Request.DesiredAPIVersion, "objects", len(out))
		writeJSON(w, map[string]any{"apiVersion": in.APIVersion, "kind": "ConversionReview", "response": map[string]any{
			"uid": in.Request.UID, "convertedObjects": out, "result": map[string]any{"status": "Success"},
		}})
	}
}
