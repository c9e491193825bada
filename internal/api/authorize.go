package api

import "net/http"

// Authorize decides whether r may do what needs role need, exactly as the API's own
// endpoints decide: a bearer token of that role or above, or, with AnonymousRead, a
// read from loopback for the viewer role. Other handlers of the same server use it to
// ask for the API's tokens (the daemon's /probe debug output). The error, when not
// nil, has a StatusCode method: 401 when no valid token was sent, 403 when its role is
// too low; an error without one is a failure to look the token up.
func (s *Server) Authorize(r *http.Request, need Role) error {
	_, err := s.authenticate(r, need, true)
	return err
}

// StatusCode is the HTTP status an authentication or authorisation failure answers
// with.
func (e *authError) StatusCode() int { return e.status }
