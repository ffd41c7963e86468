package conformance

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/capilab/capilab/internal/report"
)

// follower streams the e2e plugin pod's container logs into files while
// the run goes: the aggregator deletes the pod when the plugin is done, and
// a run cut short leaves no results, so these files are the record of what
// ran.
type follower struct {
	t        *Target
	ns, dir  string
	log      *slog.Logger
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	started  map[string]bool
	captured []report.Artifact
	progress ginkgoProgress // read from the e2e container's output
}

func newFollower(t *Target, ns, dir string, log *slog.Logger) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	return &follower{t: t, ns: ns, dir: dir, log: log, ctx: ctx, cancel: cancel, started: map[string]bool{}}
}

// poll starts following every container of the plugin's pods that runs or
// ran and is not followed yet.
func (f *follower) poll(ctx context.Context) {
	pods, err := f.t.clientset.CoreV1().Pods(f.ns).List(ctx, metav1.ListOptions{LabelSelector: "sonobuoy-plugin=" + pluginName})
	if err != nil {
		return
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running == nil && cs.State.Terminated == nil {
				continue
			}
			key := p.Name + "/" + cs.Name
			f.mu.Lock()
			seen := f.started[key]
			f.started[key] = true
			f.mu.Unlock()
			if seen {
				continue
			}
			file := WorkerLog
			if cs.Name == pluginName {
				file = PluginLog
			}
			f.wg.Add(1)
			go f.follow(p.Name, cs.Name, filepath.Join(f.dir, file))
		}
	}
}

func (f *follower) follow(pod, container, path string) {
	defer f.wg.Done()
	out, err := os.Create(path)
	if err != nil {
		f.log.Warn("keep plugin log", "container", container, "err", err)
		return
	}
	defer out.Close()
	rc, err := f.t.streams.CoreV1().Pods(f.ns).GetLogs(pod, &corev1.PodLogOptions{Container: container, Follow: true}).Stream(f.ctx)
	if err != nil {
		f.log.Warn("follow plugin log", "container", container, "err", err)
		return
	}
	defer rc.Close()
	f.mu.Lock()
	f.captured = append(f.captured, report.Artifact{Name: fmt.Sprintf("log of the %s container (followed while it ran)", container), Path: path})
	f.mu.Unlock()
	var w io.Writer = out
	if container == pluginName {
		w = io.MultiWriter(out, &f.progress)
	}
	if _, err := io.Copy(w, rc); err != nil && f.ctx.Err() == nil {
		f.log.Warn("plugin log stream ended early", "container", container, "err", err)
	}
}

// stop lets the streams end on their own for a few seconds (a finished
// container's log is complete once its stream ends), then cuts them, and
// returns the files written.
func (f *follower) stop() []report.Artifact {
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		f.cancel()
		<-done
	}
	f.cancel()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.captured
}
