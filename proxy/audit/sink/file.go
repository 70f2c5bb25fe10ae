package sink

import (
	"context"
	"os"

	"github.com/tenantgate/tenantgate/proxy/audit/record"
)

// fileSink appends one event per line.
type fileSink struct {
	cfg FileConfig
	f   *os.File
	buf []byte
}

func newFile(c FileConfig) (*fileSink, error) {
	if c.Fsync == nil {
		t := true
		c.Fsync = &t
	}
	return &fileSink{cfg: c}, nil
}

// open (re)opens the file when it is not open or was renamed or removed.
func (s *fileSink) open() error {
	if s.f != nil {
		st, err := os.Stat(s.cfg.Path)
		if cur, ferr := s.f.Stat(); err == nil && ferr == nil && os.SameFile(st, cur) {
			return nil
		}
		s.f.Close()
		s.f = nil
	}
	f, err := os.OpenFile(s.cfg.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	s.f = f
	return nil
}

func (s *fileSink) Send(_ context.Context, batch []record.View) (Receipt, error) {
	if err := s.open(); err != nil {
		return Receipt{}, err
	}
	s.buf = s.buf[:0]
	for i := range batch {
		s.buf = append(append(s.buf, batch[i].Event...), '\n')
	}
	var size int64
	if st, err := s.f.Stat(); err == nil {
		size = st.Size()
	}
	if _, err := s.f.Write(s.buf); err != nil {
		_ = s.f.Truncate(size) // no partial line for the retry to follow
		s.f.Close()
		s.f = nil
		return Receipt{}, err
	}
	if *s.cfg.Fsync {
		if err := s.f.Sync(); err != nil {
			s.f.Close()
			s.f = nil
			return Receipt{}, err
		}
	}
	return Receipt{}, nil
}

func (s *fileSink) Close() error {
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}
