package inventory

import "github.com/portpatrol/portpatrol/internal/patrol"

// Exposed reports whether s is a listener on a public bind (the unspecified address,
// 0.0.0.0 or ::) of a service that must stay internal, as the well-known services
// table (patrol.Services) judges it: by its process's name when its owner is known,
// else by its protocol and port. It returns the service's description ("Redis").
func Exposed(s *Socket) (string, bool) {
	if !s.Listening() || !s.Local.Addr().IsUnspecified() {
		return "", false
	}
	if s.Owner != nil {
		if svc, ok := patrol.ServiceByCommand(s.Owner.Command); ok && svc.Internal {
			return svc.Desc, true
		}
	}
	if svc, ok := patrol.ServiceByPort(string(s.Proto), s.Local.Port()); ok && svc.Internal {
		return svc.Desc, true
	}
	return "", false
}
