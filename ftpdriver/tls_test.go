package ftpdriver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/ftpbridge/ftpbridge/ftpdriver"
	"github.com/ftpbridge/ftpbridge/ftpdriver/ftptest"
)

// selfSigned makes a certificate for 127.0.0.1 valid for an hour.
func selfSigned(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "ftpbridge test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestExplicitTLS: FEAT offers AUTH TLS, and a client that checks the
// server's certificate logs in and moves data over TLS (PROT P). No board
// takes part: "/" of a server over several boards lists their folders
// without asking any, and the one folder's board is not plugged in, which
// a command inside it hears, over TLS too.
func TestExplicitTLS(t *testing.T) {
	t.Parallel()
	cert := selfSigned(t)
	s := ftptest.StartUnpluggedMulti(t, ftptest.Options{Driver: ftpdriver.Options{
		TLS:  &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		User: "me", Password: "pw",
	}}, "b0")

	r := rawDial(t, s.Addr, "", "")
	if code, msg := r.cmd("FEAT"); code != 211 || !strings.Contains(msg, "AUTH TLS") {
		t.Errorf("FEAT with TLS = %d:\n%s", code, msg)
	}

	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	c := s.Dial(t, ftp.DialWithExplicitTLS(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}))
	entries, err := c.List("/")
	if err != nil || len(entries) != 1 || entries[0].Name != "b0" {
		t.Errorf("LIST / over TLS = %v, %v, want the folder b0", entryNames(entries), err)
	}
	if err := c.Stor("/b0/up.txt", strings.NewReader("up")); err == nil || !strings.Contains(err.Error(), "board not connected") {
		t.Errorf("STOR over TLS to a board not plugged in: %v, want \"board not connected\"", err)
	}
}
