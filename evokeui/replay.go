package evokeui

import (
	"context"
	"html/template"
	"net/http"

	"github.com/evoke-go/evoke"
)

// Replayer replays the stored instances of a process manager through the
// code of the program serving the UI, as evoke.Replay does with that
// process manager; the UI's replay page shows its report. A program that
// has its process managers' code provides it (`evoke serve` replays the
// demo's).
type Replayer func(ctx context.Context, processManager string) (evoke.ReplayReport, error)

// The replay page, added to the UI's pages.
var _ = template.Must(pages.New("replay").Parse(`{{template "head" .}}
<h2>{{.PM}}: replay</h2>
<p>The recorded steps of every instance, run again through the code of this program: an instance is listed when its commands (type, aggregate, payload), statuses, completion or final state would differ, at its first differing step. <a href="/instances?pm={{.PM}}">instances</a></p>
{{if .NoReplayer}}<p class="msg" id="msg">This UI has no code to replay {{.PM}} with: serve it from a program that has the process manager, with evokeui.Options.Replay.</p>
{{else}}{{with .R}}<p id="summary">{{.Instances}} instances, {{.Steps}} steps replayed: {{if .Differ}}<span class="s-parked">{{len .Differences}} differ</span>{{else}}<span class="s-completed">none differs</span>{{end}}</p>
{{if .Differ}}<table id="differences"><tr><th>instance</th><th>step</th><th>event</th><th>what</th><th>recorded</th><th>replayed</th></tr>
{{range .Differences}}<tr><td><a href="/instance?pm={{$.PM}}&amp;id={{.InstanceID}}">{{.InstanceID}}</a></td><td class="n">{{if .Step}}{{.Step}}{{else}}final{{end}}</td>
<td>{{.EventType}}{{if .Position}} @{{.Position}}{{end}}</td><td>{{.What}}</td><td><code>{{.Recorded}}</code></td><td><code>{{.Replayed}}</code></td></tr>{{end}}
</table>{{end}}{{end}}{{end}}
</body></html>`))

func (u *ui) replay(w http.ResponseWriter, r *http.Request) {
	pm := r.URL.Query().Get("pm")
	data := map[string]any{"PM": pm, "NoReplayer": u.opts.Replay == nil}
	if u.opts.Replay != nil {
		rep, err := u.opts.Replay(r.Context(), pm)
		if err != nil {
			u.fail(w, err)
			return
		}
		data["R"] = rep
	}
	u.render(w, r, "replay", pm+" · replay", data)
}
