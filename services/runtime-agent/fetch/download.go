package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// fetch downloads the object and writes each chunk to out once its sha256 is the recorded one.
// Reading and checking one chunk overlaps writing the one before.
func fetch(req *request, out io.Writer) *failure {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idle := time.Duration(req.IdleTimeoutMs) * time.Millisecond
	client := &http.Client{
		Transport: &http.Transport{
			// The URL is the agent's own store: no proxy from the environment stands in between.
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: idle}).DialContext,
			DisableCompression:    true,
			ResponseHeaderTimeout: idle,
		},
		// A presigned URL answers itself; a redirect would take the signed request elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodGet, req.URL, nil)
	if err != nil {
		return fail(exitUsage, "bad url: %v", withoutURL(err))
	}
	response, err := client.Do(httpReq)
	if err != nil {
		if untrusted(err) {
			// Another try would not change it.
			return fail(exitDownload, "the store's certificate is not trusted (slipway-fetch trusts the system's certificate authorities, and SSL_CERT_FILE or SSL_CERT_DIR): %v", withoutURL(err))
		}
		return fail(exitBusy, "the store could not be reached: %v", withoutURL(err))
	}
	defer response.Body.Close()
	if response.StatusCode == http.StatusNotFound {
		return fail(exitNotFound, "the object does not exist")
	}
	if response.StatusCode != http.StatusOK {
		detail, _ := io.ReadAll(io.LimitReader(response.Body, 4096))
		code := exitDownload
		if response.StatusCode >= 500 {
			code = exitBusy
		}
		return fail(code, "the store answered %s: %s", response.Status, s3Code(string(detail)))
	}
	body := newIdleReader(response.Body, idle, cancel)
	defer body.stop()

	checked := make(chan []byte, 1)
	free := make(chan []byte, 3)
	for i := 0; i < cap(free); i++ {
		free <- make([]byte, req.ChunkBytes)
	}
	var writeErr *failure
	var tarGone atomic.Bool
	var writing sync.WaitGroup
	writing.Add(1)
	go func() {
		defer writing.Done()
		for chunk := range checked {
			if writeErr == nil {
				if _, err := out.Write(chunk); err != nil {
					writeErr = fail(exitTar, "tar stopped reading: %v", err)
					tarGone.Store(true)
				}
			}
			free <- chunk[:cap(chunk)]
		}
	}()
	readErr := readChunks(req, body, checked, free, &tarGone)
	close(checked)
	writing.Wait()
	if readErr != nil {
		return readErr
	}
	return writeErr
}

// readChunks stops early, with no failure of its own, once tar stopped reading (`tarGone`).
func readChunks(req *request, body *idleReader, checked chan<- []byte, free <-chan []byte, tarGone *atomic.Bool) *failure {
	total := len(req.ChunkSha256s)
	for index, want := range req.ChunkSha256s {
		buf := <-free
		if tarGone.Load() {
			return nil
		}
		n, err := io.ReadFull(body, buf)
		if err == io.EOF {
			return fail(exitVerify, "it ends after %d of its %d recorded chunks", index, total)
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return body.failure(err)
		}
		sum := sha256.Sum256(buf[:n])
		if got := hex.EncodeToString(sum[:]); got != want {
			return fail(exitVerify, "its sha256 differs from the manifest's in chunk %d of %d (%s, recorded %s)", index+1, total, got, want)
		}
		if n < len(buf) && index+1 < total {
			return fail(exitVerify, "it ends after %d of its %d recorded chunks", index+1, total)
		}
		checked <- buf[:n]
	}
	var extra [1]byte
	n, err := io.ReadFull(body, extra[:])
	if n > 0 {
		return fail(exitVerify, "it goes on past its %d recorded chunks", total)
	}
	if err != io.EOF {
		return body.failure(err)
	}
	return nil
}

// idleReader cancels the download when no byte arrived for `idle`.
type idleReader struct {
	body    io.Reader
	timer   *time.Timer
	idle    time.Duration
	stalled bool
	mu      sync.Mutex
}

func newIdleReader(body io.Reader, idle time.Duration, cancel context.CancelFunc) *idleReader {
	r := &idleReader{body: body, idle: idle}
	r.timer = time.AfterFunc(idle, func() {
		r.mu.Lock()
		r.stalled = true
		r.mu.Unlock()
		cancel()
	})
	return r
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if n > 0 {
		r.timer.Reset(r.idle)
	}
	return n, err
}

func (r *idleReader) stop() { r.timer.Stop() }

func (r *idleReader) failure(err error) *failure {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stalled {
		return fail(exitDownload, "the download stalled: no data for %s", r.idle)
	}
	return fail(exitDownload, "the download failed: %v", withoutURL(err))
}

// withoutURL keeps the presigned URL, a credential for as long as it lasts, out of messages.
func withoutURL(err error) error {
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return urlErr.Err
	}
	return err
}

// untrusted says whether err is a TLS certificate the system does not trust.
func untrusted(err error) bool {
	var verification *tls.CertificateVerificationError
	var authority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verification) || errors.As(err, &authority) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// s3Code is the <Code> of an S3 error document, or its start.
func s3Code(document string) string {
	if start := strings.Index(document, "<Code>"); start >= 0 {
		if end := strings.Index(document[start:], "</Code>"); end > 0 {
			return document[start+len("<Code>") : start+end]
		}
	}
	if len(document) > 200 {
		document = document[:200]
	}
	return strings.TrimSpace(document)
}
