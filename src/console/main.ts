/**
 * The web console: the cluster by cloud and region (members and how the
 * others hear them), each module with its role per node, in-sync state, lag
 * and gate backends, a live timeline of the cluster's events, and the
 * operator's actions (switchover, drain/ready, restart) behind a
 * confirmation and the user's role. Live: every event refreshes the view;
 * a slow refresh runs besides, for what changes without an event (lag).
 */
import { render } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { html } from 'htm/preact';
import { Api, ApiFailure, type Cluster, type ClusterEvent, type ModuleOnNode, type Session } from './api.js';
import { replicationNotes } from '../api/replication-notes.js';

const TOKEN_KEY = 'skyha.token';

function App() {
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(TOKEN_KEY));
  const [session, setSession] = useState<Session | null>(null);
  const [loginError, setLoginError] = useState('');
  const api = useMemo(() => (token ? new Api(token) : null), [token]);

  useEffect(() => {
    if (!api) return;
    api.call<Session>('GET', '/v1/session').then(setSession, (err: Error) => {
      sessionStorage.removeItem(TOKEN_KEY);
      setToken(null);
      setLoginError(err instanceof ApiFailure && err.status === 401 ? `Not signed in: ${err.message}` : err.message);
    });
  }, [api]);

  const signIn = (t: string) => {
    setLoginError('');
    sessionStorage.setItem(TOKEN_KEY, t);
    setToken(t);
  };
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setSession(null);
    setToken(null);
  };
  if (!api || !session) return html`<${Login} error=${loginError} busy=${Boolean(api)} onSubmit=${signIn} />`;
  return html`<${Console} api=${api} session=${session} onSignOut=${signOut} />`;
}

function Login({ error, busy, onSubmit }: { error: string; busy: boolean; onSubmit: (token: string) => void }) {
  const input = useRef<HTMLInputElement>(null);
  return html`
    <main class="login">
      <h1>skyha</h1>
      <form onSubmit=${(e: Event) => {
        e.preventDefault();
        const t = input.current?.value.trim();
        if (t) onSubmit(t);
      }}>
        <label for="token">API token</label>
        <input id="token" name="token" type="password" autocomplete="off" placeholder="skyha_…" ref=${input} />
        <button type="submit" disabled=${busy}>Sign in</button>
        ${error && html`<p class="error" role="alert">${error}</p>`}
        <p class="hint">A token from <code>skyha token NAME --role ROLE</code>, or the one <code>skyha demo</code> printed.</p>
      </form>
    </main>`;
}

function Console({ api, session, onSignOut }: { api: Api; session: Session; onSignOut: () => void }) {
  const [cluster, setCluster] = useState<Cluster | null>(null);
  const [events, setEvents] = useState<ClusterEvent[]>([]);
  const [live, setLive] = useState(false);
  const [notice, setNotice] = useState<{ ok: boolean; text: string } | null>(null);
  const refreshTimer = useRef<number | undefined>(undefined);

  const refresh = useCallback(() => {
    api.call<Cluster>('GET', '/v1/cluster').then(setCluster, (err: Error) => setNotice({ ok: false, text: `Cannot read the cluster: ${err.message}` }));
  }, [api]);
  /** Many events come together (a failover): one refresh for them. */
  const soon = useCallback(() => {
    window.clearTimeout(refreshTimer.current);
    refreshTimer.current = window.setTimeout(refresh, 250);
  }, [refresh]);

  useEffect(() => {
    refresh();
    const slow = window.setInterval(refresh, 5000);
    const abort = new AbortController();
    void api.events(
      (e) => {
        setEvents((list) => (list.some((x) => x.member === e.member && x.seq === e.seq) ? list : [e, ...list].slice(0, 300)));
        soon();
      },
      setLive,
      abort.signal,
    );
    return () => {
      window.clearInterval(slow);
      abort.abort();
    };
  }, [api, refresh, soon]);

  const canAct = session.role !== 'monitor';
  const act = async (what: string, confirmText: string, method: string, path: string, body?: unknown) => {
    if (!window.confirm(confirmText)) return;
    try {
      const r = await api.call<{ detail?: string }>(method, path, body);
      setNotice({ ok: true, text: `${what}: ${r.detail || 'accepted'}` });
    } catch (err) {
      setNotice({ ok: false, text: `${what} refused: ${(err as Error).message}` });
    }
    soon();
  };

  return html`
    <header>
      <h1>skyha</h1>
      <span class="cluster">cluster <b>${session.cluster}</b>${cluster ? html` · profile ${cluster.profile}` : ''}</span>
      <span class="via">served by ${session.member}</span>
      <span class=${`live ${live ? 'on' : 'off'}`} title="the event stream">${live ? 'live' : 'reconnecting…'}</span>
      <span class="user">${session.user} (${session.role})</span>
      <button class="link" onClick=${onSignOut}>Sign out</button>
    </header>
    ${notice && html`<p class=${`notice ${notice.ok ? 'ok' : 'error'}`} role="status">${notice.text} <button class="link" onClick=${() => setNotice(null)}>dismiss</button></p>`}
    <main>
      ${cluster ? html`<${Topology} cluster=${cluster} />` : html`<p class="loading">Reading the cluster…</p>`}
      ${cluster && html`<section class="modules"><h2>Modules</h2>${cluster.modules.map((m) => html`<${ModuleCard} key=${m.name} module=${m} canAct=${canAct} act=${act} />`)}</section>`}
      <${Timeline} events=${events} />
    </main>`;
}

function Topology({ cluster }: { cluster: Cluster }) {
  const clouds = new Map<string, Cluster['members']>();
  for (const m of cluster.members) {
    const cloud = m.labels.cloud ?? 'unlabelled';
    clouds.set(cloud, [...(clouds.get(cloud) ?? []), m]);
  }
  const others = (name: string) => cluster.members.filter((o) => o.answered && o.name !== name).length;
  return html`
    <section class="topology">
      <h2>Topology</h2>
      <div class="clouds">
        ${[...clouds.entries()].map(
          ([cloud, members]) => html`
            <div class="cloud" data-cloud=${cloud}>
              <h3>${cloud}</h3>
              ${members.map((m) => {
                const state = m.answered ? 'up' : m.seenAliveBy.length > 0 ? 'unreachable' : 'down';
                return html`
                  <div class=${`member ${state}`} data-member=${m.name} data-state=${state}>
                    <div class="name">${m.name}</div>
                    <div class="role">${m.role}${m.labels.region ? ` · ${m.labels.region}` : ''}${m.labels.zone ? ` · ${m.labels.zone}` : ''}</div>
                    <div class="state">${state === 'up' ? `up · heard by ${m.seenAliveBy.length}/${others(m.name)}` : state === 'unreachable' ? `not answering · heard by ${m.seenAliveBy.join(', ')}` : `down${m.seenDeadBy.length ? ` for ${m.seenDeadBy.join(', ')}` : ''}`}</div>
                  </div>`;
              })}
            </div>`,
        )}
      </div>
    </section>`;
}

type Act = (what: string, confirmText: string, method: string, path: string, body?: unknown) => Promise<void>;

function ModuleCard({ module: m, canAct, act }: { module: Cluster['modules'][number]; canAct: boolean; act: Act }) {
  const primary = m.nodes.find((n) => n.role === 'primary');
  const gate = m.nodes.find((n) => n.gate)?.gate;
  const path = (rest: string) => `/v1/modules/${encodeURIComponent(m.name)}${rest}`;
  const denied = canAct ? '' : 'needs the control role';
  const stopped = m.nodes.find((n) => n.stopped)?.stopped;
  return html`
    <article class="module" data-module=${m.name}>
      <h3>${m.name} <span class="kind">${m.kind}</span>
        ${m.kind === 'mirror' && html` <span class="epoch">epoch ${m.epoch}</span>${m.leaseHolder ? html` <span class="lease">lease: ${m.leaseHolder}, ${Math.round((m.leaseLeftMs ?? 0) / 100) / 10} s left</span>` : ''}`}
      </h3>
      <div class="actions">
        ${m.kind === 'mirror' && html`<button disabled=${!canAct || !primary} title=${denied} onClick=${() => act(`Switchover of ${m.name}`, `Switch ${m.name} over from ${primary?.node}? Its application stops there, a final barrier makes every write durable on the new primary, which then starts it.`, 'POST', path('/switchover'), {})}>Switchover</button>`}
        ${stopped
          ? html`<button disabled=${!canAct} title=${denied} onClick=${() => act(`Start ${m.name}`, `Start ${m.name} again on every node?`, 'POST', path('/start'))}>Start</button> <span class="stopped">stopped by ${stopped.by}</span>`
          : html`<button disabled=${!canAct} title=${denied} onClick=${() => act(`Stop ${m.name}`, `Stop ${m.name} on every node? ${m.kind === 'mirror' ? 'The primary stops its application and no node takes the role' : 'Every node leaves the gates'} until someone starts it again.`, 'POST', path('/stop'))}>Stop</button>`}
      </div>
      <table>
        <thead><tr><th>node</th><th>role</th><th>application</th><th>health</th><th>checkers</th>${m.kind === 'mirror' ? html`<th>replication</th>` : html`<th>gate</th>`}<th></th></tr></thead>
        <tbody>
          ${m.nodes.map((n) => html`<${NodeRow} key=${n.node} m=${m} n=${n} primary=${primary} gate=${gate} canAct=${canAct} act=${act} path=${path} />`)}
        </tbody>
      </table>
    </article>`;
}

function NodeRow({ m, n, primary, gate, canAct, act, path }: { m: Cluster['modules'][number]; n: ModuleOnNode; primary?: ModuleOnNode; gate?: ModuleOnNode['gate']; canAct: boolean; act: Act; path: (rest: string) => string }) {
  if (!n.answered) return html`<tr data-node=${n.node} class="silent"><td>${n.node}</td><td colspan="6">no answer</td></tr>`;
  const sec = primary?.secondaries?.find((s) => s.node === n.node);
  const backend = gate?.backends.find((b) => b.node === n.node);
  const denied = canAct ? '' : 'needs the control role';
  const replication = n.role === 'primary' ? `primary${n.replication?.resyncsSent.running.length ? ` · resync ${n.replication.resyncsSent.running.map((r) => `${r.to} ${r.paths ? Math.floor((100 * r.done) / r.paths) : 0}%`).join(', ')}` : ''}` : sec ? `${sec.inSync ? 'in sync' : 'not in sync'}${sec.lagChanges ? ` · ${sec.lagChanges} behind${sec.lagBytes > 0 ? ` (${(sec.lagBytes / 1024).toFixed(0)} KiB)` : ''}` : ''}${n.replication && !n.replication.readOnly.readOnly ? ' · writable' : ''}` : '—';
  // What needs the operator (as `skyha status` says it), and watcher overflows (a tree walk made up for them).
  const notes = n.replication ? [...replicationNotes(n.replication, n.role), ...(n.replication.overflows ? [`${n.replication.overflows} watcher overflow${n.replication.overflows === 1 ? '' : 's'}`] : [])] : [];
  return html`
    <tr data-node=${n.node} data-role=${n.role}>
      <td>${n.node}</td>
      <td><span class=${`badge ${n.role}`}>${n.role}</span></td>
      <td>${n.app?.status}${n.app?.pid ? ` (pid ${n.app.pid})` : ''}${n.restarts?.givenUp ? ' · given up' : n.restarts?.inWindow ? ` · ${n.restarts.inWindow}/${n.restarts.max} restarts` : ''}</td>
      <td title=${n.health?.why}>${n.health?.code === 200 ? '200 ok' : `${n.health?.code ?? '?'}`}</td>
      <td>${(n.checkers ?? []).map((c) => html`<span class=${`check ${c.status}`} title=${c.detail ?? ''}>${c.name}</span> `)}</td>
      <td>${m.kind === 'mirror' ? html`${replication}${notes.map((note) => html` · <span class=${note.startsWith('APPLY FAILED') ? 'attention' : 'note'}>${note}</span>`)}` : backend ? `${backend.health}/${backend.admin}${backend.observed !== 'ok' ? ` · ${backend.observed}` : ''} · ${backend.requests} req${backend.errors ? ` · ${backend.errors} err` : ''}` : '—'}</td>
      <td class="actions">
        ${m.kind === 'farm' && (backend?.admin ?? 'ready') === 'ready' && html`<button disabled=${!canAct} title=${denied} onClick=${() => act(`Drain ${m.name} on ${n.node}`, `Drain ${m.name} on ${n.node}? The gates send it no new requests; open ones finish.`, 'PUT', path(`/nodes/${encodeURIComponent(n.node)}/admin`), { state: 'drain' })}>Drain</button>`}
        ${m.kind === 'farm' && backend && backend.admin !== 'ready' && html`<button disabled=${!canAct} title=${denied} onClick=${() => act(`Ready ${m.name} on ${n.node}`, `Put ${n.node} back into ${m.name}'s gate?`, 'PUT', path(`/nodes/${encodeURIComponent(n.node)}/admin`), { state: 'ready' })}>Ready</button>`}
        ${(m.kind === 'farm' || n.role === 'primary' || n.role === 'out-of-service' || n.restarts?.givenUp) && html`<button disabled=${!canAct} title=${denied} onClick=${() => act(`Restart ${m.name} on ${n.node}`, `Restart ${m.name} on ${n.node}? Its application stops and starts again.`, 'POST', path(`/nodes/${encodeURIComponent(n.node)}/restart`))}>Restart</button>`}
      </td>
    </tr>`;
}

function Timeline({ events }: { events: ClusterEvent[] }) {
  return html`
    <section class="events">
      <h2>Events</h2>
      <ol class="timeline">
        ${events.map(
          (e) => html`<li key=${`${e.member}/${e.seq}`} data-reason=${e.reason} class=${/FAIL|DOWN|LOST|FENCE|GIVE_UP|REFUSED|KILLED/.test(e.reason) ? 'warn' : ''}>
            <time datetime=${e.at}>${new Date(e.at).toLocaleTimeString()}</time>
            <span class="who">${e.member}</span>
            <span class="mod">${e.module ?? ''}</span>
            <span class="reason">${e.reason}</span>
            <span class="text">${e.text}</span>
          </li>`,
        )}
      </ol>
    </section>`;
}

const root = document.getElementById('app')!;
// The page's "Loading…" placeholder is not Preact's to diff: clear it.
root.textContent = '';
render(html`<${App} />`, root);
