package session_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/statelab/statelab/session"
	"github.com/statelab/statelab/session/cookiestore"
	"github.com/statelab/statelab/session/memstore"
)

// visits is what the examples keep in a session.
type visits struct {
	Count int `json:"count"`
}

// countVisit is a handler that counts a client's requests in its session.
func countVisit(m *session.Manager) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v visits
		err := m.Update(r.Context(), func(data []byte) ([]byte, error) {
			v = visits{} // fn may run more than once: start afresh each time
			if data != nil {
				if err := json.Unmarshal(data, &v); err != nil {
					return nil, err
				}
			}
			v.Count++
			return json.Marshal(v)
		})
		switch {
		case errors.Is(err, session.ErrUnavailable):
			w.Header().Set("Retry-After", "1")
			http.Error(w, "session store unavailable", http.StatusServiceUnavailable)
			return
		case err != nil:
			http.Error(w, "cannot update session", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "visit %d", v.Count)
	})
}

// Example shows a server-side Manager: the cookie holds only a random ID, the
// store holds the data, and concurrent Updates of one session never lose a
// change.
func Example() {
	store := memstore.New()
	defer store.Close()
	m, err := session.NewManager(store, session.Config{})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(m.Handler(countVisit(m)))
	defer srv.Close()

	var cookie *http.Cookie
	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		var body [64]byte
		n, _ := resp.Body.Read(body[:])
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			cookie = c
		}
		fmt.Println(string(body[:n]))
	}
	fmt.Println("cookie:", cookie.Name, "HttpOnly:", cookie.HttpOnly)
	// Output:
	// visit 1
	// visit 2
	// visit 3
	// cookie: statelab_session HttpOnly: true
}

// ExampleNewClientManager keeps the session in the client's cookie, sealed
// with a key derived from a secret that every replica shares. Rotate keys by
// putting the new secret first and keeping the old one until its cookies have
// expired: cookiestore.FromSecret(newSecret, oldSecret).
func ExampleNewClientManager() {
	sealer, err := cookiestore.FromSecret("a shared secret of at least 16 bytes")
	if err != nil {
		log.Fatal(err)
	}
	m, err := session.NewClientManager(sealer, session.Config{HostPrefix: true})
	if err != nil {
		log.Fatal(err)
	}
	h := m.Handler(countVisit(m))

	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "https://shop.example/", nil))
	c := rec.Result().Cookies()[0]
	fmt.Println(rec.Body.String())
	fmt.Println("cookie:", c.Name, "Secure:", c.Secure)

	// Any replica with the same secret can serve the next request.
	req := httptest.NewRequest("GET", "https://shop.example/", nil)
	req.AddCookie(c)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	fmt.Println(rec.Body.String())
	// Output:
	// visit 1
	// cookie: __Host-statelab_session Secure: true
	// visit 2
}

// ExampleManager_Renew renews the session ID at login, so that an ID planted
// or observed before the login is worthless afterwards.
func ExampleManager_Renew() {
	store := memstore.New()
	defer store.Close()
	m, err := session.NewManager(store, session.Config{})
	if err != nil {
		log.Fatal(err)
	}
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// … check the credentials, then:
		if err := m.Renew(r.Context()); err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		err := m.Update(r.Context(), func(data []byte) ([]byte, error) {
			return []byte(`{"user":"ada"}`), nil
		})
		if err != nil {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "welcome")
	})
	rec := httptest.NewRecorder()
	m.Handler(login).ServeHTTP(rec, httptest.NewRequest("POST", "/login", nil))
	fmt.Println(rec.Body.String(), len(rec.Result().Cookies()))
	// Output: welcome 1
}
