package sink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tenantgate/tenantgate/proxy/audit/filter"
	"github.com/tenantgate/tenantgate/proxy/audit/record"
)

// syslogSink writes RFC 5424 messages with octet-counting framing.
type syslogSink struct {
	cfg    SyslogConfig
	tlsCfg *tls.Config
	pri    string // "<PRI>1 " for notices
	priW   string // for tenantgate's own decisions (warning)

	mu     sync.Mutex
	conn   net.Conn
	raw    *countingConn
	gen    atomic.Uint64
	broken atomic.Bool
	buf    []byte
	msg    []byte
}

func newSyslog(c SyslogConfig) (*syslogSink, error) {
	c.setDefaults()
	s := &syslogSink{cfg: c}
	s.pri = "<" + strconv.Itoa(*c.Facility*8+5) + ">1 "
	s.priW = "<" + strconv.Itoa(*c.Facility*8+4) + ">1 "
	if c.TLS != nil {
		var err error
		if s.tlsCfg, err = c.TLS.Build(); err != nil {
			return nil, err
		}
		if s.tlsCfg.ServerName == "" {
			s.tlsCfg.ServerName, _, _ = net.SplitHostPort(c.Address)
		}
	}
	return s, nil
}

// countingConn counts the bytes written to the TCP connection (under TLS,
// the encrypted ones), to compare with what the peer acknowledged.
type countingConn struct {
	*net.TCPConn
	written atomic.Int64
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.TCPConn.Write(b)
	c.written.Add(int64(n))
	return n, err
}

// unacked returns the bytes the peer's TCP has not acknowledged (SIOCOUTQ).
func (c *countingConn) unacked() (int64, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var v int
	var ierr error
	if err := rc.Control(func(fd uintptr) { v, ierr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil {
		return 0, err
	}
	return int64(v), ierr
}

func (s *syslogSink) AckDelay() time.Duration { return s.cfg.AckDelay }

func (s *syslogSink) Progress() (uint64, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gen := s.gen.Load()
	if s.raw == nil || s.broken.Load() {
		return gen + 1, 0 // a broken connection matches no receipt
	}
	q, err := s.raw.unacked()
	if err != nil {
		return gen + 1, 0
	}
	return gen, s.raw.written.Load() - q
}

// connect dials when there is no healthy connection.
func (s *syslogSink) connectLocked(ctx context.Context) error {
	if s.conn != nil && !s.broken.Load() {
		return nil
	}
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.raw = nil, nil
	}
	d := net.Dialer{Timeout: s.cfg.DialTimeout}
	c, err := d.DialContext(ctx, "tcp", s.cfg.Address)
	if err != nil {
		return err
	}
	raw := &countingConn{TCPConn: c.(*net.TCPConn)}
	var conn net.Conn = raw
	if s.tlsCfg != nil {
		tc := tls.Client(raw, s.tlsCfg)
		hctx, cancel := context.WithTimeout(ctx, s.cfg.DialTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			raw.Close()
			return err
		}
		conn = tc
	}
	s.gen.Add(1)
	s.broken.Store(false)
	s.conn, s.raw = conn, raw
	go s.watch(conn, s.gen.Load())
	return nil
}

// watch reads from the connection, where a syslog receiver sends nothing:
// any return (EOF, reset) means the connection is gone.
func (s *syslogSink) watch(c net.Conn, gen uint64) {
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			if gen == s.gen.Load() {
				s.broken.Store(true)
			}
			return
		}
	}
}

func (s *syslogSink) Send(ctx context.Context, batch []record.View) (Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connectLocked(ctx); err != nil {
		return Receipt{}, err
	}
	s.buf = s.buf[:0]
	shrunk := 0
	for i := range batch {
		var cut bool
		s.buf, cut = s.appendMessage(s.buf, &batch[i])
		if cut {
			shrunk++
		}
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	if _, err := s.conn.Write(s.buf); err != nil {
		s.broken.Store(true)
		return Receipt{}, err
	}
	if s.broken.Load() {
		return Receipt{}, errors.New("syslog connection closed by the receiver")
	}
	return Receipt{Conn: s.gen.Load(), End: s.raw.written.Load(), Shrunk: shrunk}, nil
}

// appendMessage appends one octet-counted RFC 5424 message:
// LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME - audit [SD] MSG. A message over
// MaxMessageBytes is shrunk (see SyslogConfig.MaxMessageBytes), and cut
// reports it.
func (s *syslogSink) appendMessage(dst []byte, v *record.View) (_ []byte, cut bool) {
	app, pri := "kube-apiserver", s.pri
	if v.Source == record.SourceTenantgate {
		app, pri = "tenantgate", s.priW
	}
	m := s.msg[:0]
	m = append(m, pri...)
	m = v.Time.UTC().AppendFormat(m, "2006-01-02T15:04:05.000000Z07:00")
	m = append(m, ' ')
	m = append(m, s.cfg.Hostname...)
	m = append(m, ' ')
	m = append(m, app...)
	m = append(m, " - audit ["...)
	m = append(m, s.cfg.SDID...)
	m = appendParam(m, "tenant", v.Tenant)
	m = appendParam(m, "tenant_key", v.KeyID)
	m = appendParam(m, "audit_id", v.AuditID)
	m = appendParam(m, "stage", v.Stage)
	m = append(m, "] "...)
	ev := v.Event
	if limit := int(s.cfg.MaxMessageBytes); len(m)+len(ev) > limit {
		cut = true
		note := fmt.Sprintf("[LEFT OUT: the event is %d bytes, over the sink's max_message_bytes of %d]", len(ev), limit)
		if small, ok := filter.Salvage(ev, note); ok {
			ev = small
		}
		if len(m)+len(ev) > limit {
			ev = ev[:max(limit-len(m), 0)] // the receiver gets a cut event, and the connection lives
		}
	}
	m = append(m, ev...)
	s.msg = m
	dst = strconv.AppendInt(dst, int64(len(m)), 10)
	dst = append(dst, ' ')
	return append(dst, m...), cut
}

// appendParam appends an SD-PARAM, escaping '"', '\' and ']' as RFC 5424
// requires. Empty values are left out.
func appendParam(dst []byte, name string, v []byte) []byte {
	if len(v) == 0 {
		return dst
	}
	dst = append(dst, ' ')
	dst = append(dst, name...)
	dst = append(dst, '=', '"')
	for _, c := range v {
		if c == '"' || c == '\\' || c == ']' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

func (s *syslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	if errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("closing syslog connection: %w", err)
	}
	return nil
}
