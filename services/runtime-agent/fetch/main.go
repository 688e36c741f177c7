// slipway-fetch: the runtime agent's restore of an artifact Slipway packed, at the pace of
// `curl | tar`. It downloads one object, checks each chunk against the sha256 the packer recorded
// for it, and hands only checked chunks to GNU tar, which decompresses and writes them.
//
// The agent does the same in node when this helper is absent; this exists because node's own
// HTTP, hashing and pipe writes cost as much CPU again as the download, on machines where zstd
// and tar already keep the cores busy (bench/restore).
//
//	slipway-fetch --compression zstd|gzip --dir DIR < request.json
//
// The request (JSON on stdin, never argv, which other users can read): the object's presigned
// URL, the chunk size and the chunks' sha256s, and how long the download may move no byte. Exit
// status: 0 extracted; 2 bad usage or request; 3 a chunk differs from its record, or the object
// is longer or shorter than its chunks (nothing past the last good chunk reached tar); 4 the
// download failed; 5 the object does not exist; 6 tar failed; 7 the store could not be reached
// or was busy, before any byte reached tar (worth another try). On failure the last line on
// stderr says why, and the caller discards DIR.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	exitUsage    = 2
	exitVerify   = 3
	exitDownload = 4
	exitNotFound = 5
	exitTar      = 6
	exitBusy     = 7

	// fcntl's F_SETPIPE_SZ (Linux), which package syscall does not name.
	fSetPipeSize = 1031
)

type request struct {
	URL           string   `json:"url"`
	ChunkBytes    int      `json:"chunkBytes"`
	ChunkSha256s  []string `json:"chunkSha256s"`
	IdleTimeoutMs int      `json:"idleTimeoutMs"`
}

type failure struct {
	code    int
	message string
}

func (f *failure) Error() string { return f.message }

func fail(code int, format string, args ...any) *failure {
	return &failure{code, fmt.Sprintf(format, args...)}
}

func main() {
	compression := flag.String("compression", "", "zstd or gzip")
	dir := flag.String("dir", "", "the directory to extract into")
	flag.Parse()
	if err := run(*compression, *dir, os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "slipway-fetch: %s\n", err.message)
		os.Exit(err.code)
	}
}

func readRequest(in io.Reader) (*request, *failure) {
	var req request
	decoder := json.NewDecoder(io.LimitReader(in, 16<<20))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&req); err != nil {
		return nil, fail(exitUsage, "the request on stdin is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(req.URL, "http://") && !strings.HasPrefix(req.URL, "https://") {
		return nil, fail(exitUsage, "the request's url must be http or https")
	}
	if req.ChunkBytes <= 0 || req.ChunkBytes > 256<<20 || len(req.ChunkSha256s) == 0 || req.IdleTimeoutMs <= 0 {
		return nil, fail(exitUsage, "the request needs chunkBytes (1 to 256 MiB), chunkSha256s and idleTimeoutMs")
	}
	for _, digest := range req.ChunkSha256s {
		if decoded, err := hex.DecodeString(digest); err != nil || len(decoded) != sha256.Size {
			return nil, fail(exitUsage, "chunk sha256 %q is not 64 hex digits", digest)
		}
	}
	return &req, nil
}

func run(compression, dir string, in io.Reader) *failure {
	decompress := map[string]string{"zstd": "--zstd", "gzip": "-z"}[compression]
	if decompress == "" || dir == "" {
		return fail(exitUsage, "usage: slipway-fetch --compression zstd|gzip --dir DIR < request.json")
	}
	req, bad := readRequest(in)
	if bad != nil {
		return bad
	}

	// The modes as packed (the packer sealed them), with no chmod per file and no umask in the way.
	syscall.Umask(0)
	args := []string{"-x", "-f", "-", "--no-same-owner", "--no-same-permissions", decompress, "-C", dir}
	if compression == "gzip" {
		// node tar packs gzip artifacts, and need not keep each directory's entries together: a
		// directory's time set on leaving it would be changed by an entry of it arriving later.
		args = append(args, "--delay-directory-restore")
	}
	tar := exec.Command("tar", args...)
	tar.Env = append(os.Environ(), "LC_ALL=C")
	// tar goes when this process goes, killed or not: its caller discards what it wrote. In a
	// process group of its own, so that a failure here stops its zstd too.
	tar.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	var tarStderr strings.Builder
	tar.Stderr = &limitedWriter{w: &tarStderr, left: 64 << 10}
	tarOutput, tarInput, err := os.Pipe()
	if err != nil {
		return fail(exitTar, "tar: %v", err)
	}
	// A pipe of 1 MiB, not 64 KiB: a sixteenth of the wake-ups between this process and tar's zstd.
	// Only a hint: an unprivileged process past /proc/sys/fs/pipe-max-size keeps the default.
	syscall.Syscall(syscall.SYS_FCNTL, tarInput.Fd(), fSetPipeSize, 1<<20)
	tar.Stdin = tarOutput
	if err := tar.Start(); err != nil {
		return fail(exitTar, "tar could not start: %v", err)
	}
	tarOutput.Close()
	tarFailed := func() *failure {
		tarInput.Close()
		waitErr := tar.Wait()
		first := strings.SplitN(strings.TrimSpace(tarStderr.String()), "\n", 2)[0]
		if first == "" && waitErr != nil {
			first = waitErr.Error()
		}
		return fail(exitTar, "tar could not read the archive: %s", first)
	}

	fetchErr := fetch(req, tarInput)
	if fetchErr != nil {
		if fetchErr.code == exitTar {
			return tarFailed()
		}
		// zstd holds tar's stderr open too: Wait returns only once both are gone.
		syscall.Kill(-tar.Process.Pid, syscall.SIGKILL)
		tarInput.Close()
		tar.Wait()
		return fetchErr
	}
	if err := tarInput.Close(); err != nil {
		return tarFailed()
	}
	if err := tar.Wait(); err != nil {
		return tarFailed()
	}
	return nil
}

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

type limitedWriter struct {
	w    io.Writer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.left > 0 {
		take := p
		if len(take) > l.left {
			take = take[:l.left]
		}
		l.left -= len(take)
		l.w.Write(take)
	}
	return len(p), nil
}
