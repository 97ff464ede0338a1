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

func TestExplicitTLS(t *testing.T) {
	cert := selfSigned(t)
	s := ftptest.Start(t, ftptest.Options{Driver: ftpdriver.Options{
		TLS:  &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		User: "me", Password: "pw",
	}})
	put(t, s.Board.Root, "secret.txt", []byte("over TLS\n"))

	r := rawDial(t, s.Addr, "", "")
	if code, msg := r.cmd("FEAT"); code != 211 || !strings.Contains(msg, "AUTH TLS") {
		t.Errorf("FEAT with TLS = %d:\n%s", code, msg)
	}

	c := s.Dial(t, ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true})) // the test's own certificate
	if got := retr(t, c, "/secret.txt", 0); string(got) != "over TLS\n" {
		t.Errorf("RETR over TLS = %q", got)
	}
	if err := c.Stor("/up.txt", strings.NewReader("up")); err != nil {
		t.Errorf("STOR over TLS: %v", err)
	}
}
