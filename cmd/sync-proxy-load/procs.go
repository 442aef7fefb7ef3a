package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sync-proxy/sync-proxy/internal/loadgen"
)

// child is a process the bench started and must stop.
type child struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	logPath string
	workers []int // nginx's worker processes, stopped by PID if the master dies first
}

// startChild starts bin with args, output to logPath.
func startChild(name, bin string, args []string, logPath string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"} // no SYNC_PROXY_* from the caller
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), logPath: logPath}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	return c, nil
}

// pid is the process's id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the process has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends sig to the process (by PID), waits up to grace, then kills it and any workers
// it left behind, by PID.
func (c *child) stop(sig syscall.Signal, grace time.Duration) {
	if !c.exited() {
		_ = syscall.Kill(c.pid(), sig)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = syscall.Kill(c.pid(), syscall.SIGKILL)
			<-c.done
		}
	}
	for _, w := range c.workers {
		if processAlive(w) {
			_ = syscall.Kill(w, syscall.SIGKILL)
		}
	}
}

// processAlive reports whether pid still runs (and is not a zombie).
func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z'
}

// logTail is the end of the process's output, for error messages.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitUntil polls ready every 20 ms until it returns true, the child exits, or limit passes.
func waitUntil(c *child, limit time.Duration, ready func() bool) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c.exited() {
			return fmt.Errorf("%s exited: %s", c.name, c.logTail())
		}
		if ready() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v: %s", c.name, limit, c.logTail())
}

// proxySetup is how one sync-proxy is started.
type proxySetup struct {
	bin     string
	dir     string
	mirror  bool
	els     []*loadgen.FakeEL // the first is the primary in direct mode
	elJWT   string            // secret file for the ELs
	bnJWT   string            // secret file the beacon node signs with
	profile bool              // serve /debug/pprof/
	extra   []string          // more flags
}

// startProxy starts sync-proxy and waits for its operations listener.
func startProxy(s proxySetup) (c *child, engineURL, opsURL string, err error) {
	listen, err := freePort()
	if err != nil {
		return nil, "", "", err
	}
	ops, err := freePort()
	if err != nil {
		return nil, "", "", err
	}
	args := []string{"--listen", listen, "--ops-listen", ops, "--log-level", "warn", "--shutdown-timeout", "1s",
		"--bn", "name=bn1,jwt-secret=" + s.bnJWT}
	for i, el := range s.els {
		role := "follower"
		if i == 0 && !s.mirror {
			role = "primary"
		}
		args = append(args, "--el", fmt.Sprintf("name=el%d,url=%s,jwt-secret=%s,role=%s", i, el.URL(), s.elJWT, role))
	}
	if s.mirror {
		args = append(args, "--mode", "mirror")
	}
	if s.profile {
		args = append(args, "--pprof")
	}
	args = append(args, s.extra...)
	c, err = startChild("sync-proxy", s.bin, args, filepath.Join(s.dir, "sync-proxy.log"))
	if err != nil {
		return nil, "", "", err
	}
	opsURL = "http://" + ops
	err = waitUntil(c, 10*time.Second, func() bool {
		resp, err := http.Get(opsURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if err != nil {
		c.stop(syscall.SIGKILL, time.Second)
		return nil, "", "", err
	}
	return c, "http://" + listen, opsURL, nil
}

// nginxConf is the fastest generic configuration: keep-alive to the upstream, the request
// body streamed rather than buffered, no access log.
const nginxConf = `daemon off;
master_process on;
worker_processes auto;
pid {{dir}}/nginx.pid;
error_log {{dir}}/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path {{dir}}/tmp/body;
    proxy_temp_path {{dir}}/tmp/proxy;
    fastcgi_temp_path {{dir}}/tmp/fastcgi;
    uwsgi_temp_path {{dir}}/tmp/uwsgi;
    scgi_temp_path {{dir}}/tmp/scgi;
    client_max_body_size 64m;
    client_body_buffer_size 32m;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    upstream el {
        server {{upstream}};
        keepalive 32;
        keepalive_requests 1000000;
    }
    server {
        listen {{listen}};
        location / {
            proxy_pass http://el;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 30s;
        }
    }
}
`

// startNginx starts nginx in the foreground with its own prefix under dir, proxying to
// upstream (host:port), and returns its URL.
func startNginx(bin, dir, upstream string) (*child, string, error) {
	prefix := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755); err != nil {
		return nil, "", err
	}
	// Workers run as nobody when nginx starts as root: let them reach their temp paths.
	for _, p := range []string{dir, prefix, filepath.Join(prefix, "tmp")} {
		if err := os.Chmod(p, 0o755); err != nil {
			return nil, "", err
		}
	}
	listen, err := freePort()
	if err != nil {
		return nil, "", err
	}
	conf := strings.NewReplacer("{{dir}}", prefix, "{{upstream}}", upstream, "{{listen}}", listen).Replace(nginxConf)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	c, err := startChild("nginx", bin, []string{"-p", prefix + "/", "-c", confPath, "-e", filepath.Join(prefix, "error.log")},
		filepath.Join(prefix, "stderr.log"))
	if err != nil {
		return nil, "", err
	}
	err = waitUntil(c, 10*time.Second, func() bool {
		conn, err := net.DialTimeout("tcp", listen, 100*time.Millisecond)
		if err != nil {
			return false
		}
		conn.Close()
		w, _ := loadgen.Children(c.pid())
		c.workers = w
		return len(w) > 0
	})
	if err != nil {
		c.stop(syscall.SIGKILL, time.Second)
		return nil, "", err
	}
	return c, "http://" + listen, nil
}

// measured lists the PIDs whose CPU and memory are the hop's: the process and its workers.
func (c *child) measured() []int {
	return append([]int{c.pid()}, c.workers...)
}
