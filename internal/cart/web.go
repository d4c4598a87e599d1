package cart

import (
	"embed"
	"io/fs"
	"net/http"
)

// webFS holds the shop page: index.html, served at "/", and the assets it
// loads from /static/. Nothing comes from a CDN.
//
//go:embed web
var webFS embed.FS

// webRoot is webFS with the "web/" prefix removed.
var webRoot = func() fs.FS {
	sub, err := fs.Sub(webFS, "web")
	if err != nil {
		panic(err) // unreachable: "web" is embedded above
	}
	return sub
}()

// servePage serves the shop page.
func servePage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
	http.ServeFileFS(w, r, webRoot, "index.html")
}

// staticHandler serves the page's assets under /static/; anything else
// there is a JSON 404.
func staticHandler() http.Handler {
	files := http.FileServerFS(webRoot)
	return http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fi, err := fs.Stat(webRoot, r.URL.Path); err != nil || fi.IsDir() || r.URL.Path == "index.html" {
			writeError(w, &apiError{Status: http.StatusNotFound, Code: "not_found", Message: "no such file: /static/" + r.URL.Path})
			return
		}
		files.ServeHTTP(w, r)
	}))
}
