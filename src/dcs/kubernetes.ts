// The Kubernetes DCS (Patroni's `kubernetes:` section), spec patroni-interfaces.md 1.7.5.
//
// Why this implements Dcs directly instead of a DcsBackend under KvDcs: Kubernetes has no keys and
// no TTL primitive. Patroni keeps its logical keys as annotations on a few objects of the namespace
// (ConfigMaps, or Endpoints with use_endpoints) and the members as the `status` annotation of each
// Pod; the leader lease is not enforced by the server but expressed in the leader object's
// annotations (leader, acquireTime, renewTime, ttl, transitions), and every reader decides expiry
// with its own clock: the record is gone once it has not changed for `ttl` seconds since this
// reader first saw it. DcsBackend's sessions (granted by the store, keys vanishing with them) do
// not exist here, so the verbs are written against the objects, with codec.ts for the values.
//
// The mapping (object names for scope `batman`; ConfigMap mode / Endpoints mode):
//   leader, status, failsafe  -> batman-leader / batman: annotations leader, acquireTime, renewTime,
//                                ttl, transitions; optime, slots, retain_slots; failsafe
//   config, initialize, history -> batman-config: annotations config, initialize, history
//   failover                  -> batman-failover: annotations leader, member, scheduled_at
//   sync                      -> batman-sync: annotations leader, sync_standby, quorum
//   members/<name>            -> Pod <name>: annotation status, plus the role labels
// Every object is found by the label selector `labels` + <scope_label>=<scope>; compare-and-set is
// metadata.resourceVersion in the patch (409 Conflict = the CAS lost).
//
// What "session" means here: the client's current lease on the leader record, named by the
// acquireTime it wrote (Leader.session). A new acquisition (first acquire, takeLeader, a lapsed
// lease: no successful renewal for ttl by our own clock, or a ttl change) writes a new
// acquireTime; a refresh rewrites renewTime only, so Leader.version (holder + acquireTime +
// transitions) stays and watchers are not woken (a watch wakes when the `leader` annotation
// changes, as Patroni's does). Members have no session (Member.session ''): a Pod's annotation
// lives as long as the Pod; deleteMember and close() (without keepLease) remove it.
//
// Pod role labels (touchMember): <role_label> = leader_label_value while we hold the lock
// (standby_leader_label_value for a standby leader), follower_label_value for a running replica,
// the role verbatim for other running roles, removed otherwise; tmp_role_label and bootstrap_labels
// as Patroni. So Services selecting <role_label>=<leader_label_value> route to the primary.

import { DcsError, type CallOptions, type Dcs } from './dcs.ts';
import type { Op } from './backend.ts';
import { K8sApi, apiPath, type K8sApiOptions } from './kubernetes-api.ts';
import { K8sObjects, annotationsOf, labelsOf, nameOf, rvOf, type Ann, type Obj, type Patch } from './kubernetes-objects.ts';
import { compactJson, decodeCluster, encodeConfig, encodeFailsafe, encodeHistory, encodeMember, unusableConfigVersion, type RawKv } from './codec.ts';
import type { ClusterView, HistoryLine, LeaderStatus, MemberData } from '../core/model.ts';

export interface KubernetesDcsOptions {
  /** Logical prefix (/service/batman/), as Dcs.prefix; the objects are named from `scope`. */
  prefix: string;
  scope: string;
  name: string;
  ttl: number;
  retryTimeout: number;
  namespace: string;
  labels: Record<string, string>;
  scopeLabel: string;
  roleLabel: string;
  leaderLabelValue: string;
  followerLabelValue: string;
  standbyLeaderLabelValue: string;
  tmpRoleLabel?: string | undefined;
  bootstrapLabels?: Record<string, string> | undefined;
  useEndpoints: boolean;
  /** Endpoints mode: the address the leader Endpoints points at. */
  podIp?: string | undefined;
  ports: { name?: string | undefined; port: number; protocol?: string | undefined }[];
  api: K8sApiOptions;
  /** A control tool's client: never takes the lock nor writes a member. */
  ctl?: boolean;
  /** Clock of the lease decisions and deadlines, ms (Date.now). */
  now?: () => number;
  logger?: { warn(obj: object, msg?: string): void; debug?(obj: object, msg?: string): void };
}

const RECORD_KEYS = ['leader', 'acquireTime', 'ttl', 'renewTime', 'transitions'] as const;
const BOOTSTRAP_STATES = new Set(['initializing new cluster', 'running custom bootstrap script', 'starting after custom bootstrap', 'creating replica']);

export class KubernetesDcs implements Dcs {
  readonly prefix: string;
  readonly #o: KubernetesDcsOptions;
  readonly #api: K8sApi;
  readonly #objs: K8sObjects;
  readonly #now: () => number;
  readonly #names: { leader: string; config: string; sync: string; failover: string };
  #ttl: number;
  #retryMs: number;
  /** Our lease on the leader record: the acquireTime we wrote, its ttl, our last good write. */
  #lease: { acquireTime: string; ttl: number; renewedAt: number } | undefined;
  /** The leader record as last seen, and when (our clock) it last changed. */
  #observed: { key: string; at: number } | undefined;
  /** Our Pod's status annotation and labels as last seen (read or written). */
  #ownPod: { status: string | undefined; labels: Ann } | undefined;
  #lastRead: { revision: string; holder: string } | undefined;
  /** The leader object as the last readCluster listed it (its resourceVersion for refreshLeader). */
  #leaderSeen: Obj | undefined;
  #lastMicros = 0;
  #warnedLabels = false;
  #closed = false;
  readonly #watches = new AbortController();

  constructor(opts: KubernetesDcsOptions) {
    this.#o = opts;
    this.prefix = opts.prefix;
    this.#now = opts.now ?? Date.now;
    this.#api = new K8sApi({ ...opts.api, now: this.#now });
    this.#ttl = opts.ttl;
    this.#retryMs = opts.retryTimeout * 1000;
    const s = opts.scope;
    this.#names = { leader: opts.useEndpoints ? s : `${s}-leader`, config: `${s}-config`, sync: `${s}-sync`, failover: `${s}-failover` };
    this.#objs = new K8sObjects(this.#api, { ...opts, configName: this.#names.config });
  }

  /** The session (acquireTime of our lease on the leader record); undefined when we hold none. */
  get session(): string | undefined {
    return this.#lease?.acquireTime;
  }

  /** Names of the leader, config, sync and failover objects. */
  get objectNames(): { leader: string; config: string; sync: string; failover: string } {
    return { ...this.#names };
  }

  #op(opts: CallOptions | undefined): Op {
    return { signal: opts?.signal, deadline: this.#now() + this.#retryMs, budgetMs: this.#retryMs };
  }

  /** An ISO-8601 UTC time with microseconds, like Patroni's, later than every previous one of ours. */
  #stamp(): string {
    const micros = Math.max(Math.floor(this.#now()) * 1000, this.#lastMicros + 1);
    this.#lastMicros = micros;
    return `${new Date(Math.floor(micros / 1000)).toISOString().slice(0, 23)}${String(micros % 1000).padStart(3, '0')}+00:00`;
  }

  #noCtl(verb: string): void {
    if (this.#o.ctl === true) throw new DcsError('DCS_PROTOCOL', `kubernetes: a control client does not ${verb}`, { retryable: false });
  }

  // ---- the leader record ---------------------------------------------------------------------

  /** Note the record of `obj` (its change time is the start of its validity for us). */
  #observe(obj: Obj | undefined): Ann {
    const ann = annotationsOf(obj);
    const record: Ann = {};
    for (const k of RECORD_KEYS) if (ann[k] !== undefined) record[k] = ann[k];
    const key = JSON.stringify(record);
    if (this.#observed?.key !== key) this.#observed = { key, at: this.#now() };
    return ann;
  }

  /** Whether the observed record has not changed for its ttl (annotation, else ours). */
  #expired(ann: Ann): boolean {
    const ttl = Number.parseInt(ann.ttl ?? '', 10);
    const seconds = Number.isFinite(ttl) && ttl > 0 ? ttl : this.#ttl;
    return this.#observed === undefined || this.#now() > this.#observed.at + seconds * 1000;
  }

  #subsets(holding: boolean): Obj {
    if (!this.#o.useEndpoints) return {};
    if (!holding || this.#o.podIp === undefined) return { subsets: [] };
    const ports = this.#o.ports.map((p) => ({ ...(p.name !== undefined ? { name: p.name } : {}), port: p.port, ...(p.protocol !== undefined ? { protocol: p.protocol } : {}) }));
    return { subsets: [{ addresses: [{ ip: this.#o.podIp, targetRef: { kind: 'Pod', namespace: this.#o.namespace, name: this.#o.name } }], ports }] };
  }

  /** A new acquisition of the record `cur` (absent: create); with `cas`, guarded by its resourceVersion. */
  async #take(cur: Obj | undefined, cas: boolean, op: Op): Promise<boolean> {
    const ann = annotationsOf(cur);
    let transitions = Number.parseInt(ann.transitions ?? '0', 10) || 0;
    if (cur !== undefined && ann.leader !== this.#o.name) transitions += 1;
    const start = this.#now();
    const acquireTime = this.#stamp();
    const record: Patch = { leader: this.#o.name, acquireTime, renewTime: acquireTime, ttl: String(this.#ttl), transitions: String(transitions) };
    const res = cur === undefined
      ? await this.#objs.create(this.#names.leader, record, op, this.#subsets(true))
      : await this.#objs.patch(this.#objs.resource, this.#names.leader, record, cas ? rvOf(cur) : undefined, op, this.#subsets(true));
    if (typeof res === 'string') return false;
    this.#lease = { acquireTime, ttl: this.#ttl, renewedAt: start };
    this.#observe(res);
    return true;
  }

  // ---- Dcs -----------------------------------------------------------------------------------

  async readCluster(opts?: CallOptions): Promise<ClusterView> {
    const op = this.#op(opts);
    const [objs, pods] = await Promise.all([this.#objs.list(this.#objs.resource, op), this.#objs.list('pods', op)]);
    const byName = new Map(objs.items.map((o) => [nameOf(o), o]));
    const kvs: RawKv[] = [];
    const kv = (rel: string, value: string, version: string, lease = ''): void => {
      kvs.push({ key: this.prefix + rel, value, modRevision: version, createRevision: version, lease });
    };

    const leaderObj = byName.get(this.#names.leader);
    this.#leaderSeen = leaderObj;
    const la = this.#observe(leaderObj);
    const holder = la.leader ?? '';
    this.#lastRead = { revision: objs.rv, holder };
    if (holder !== '' && !this.#expired(la)) kv('leader', holder, `${holder}/${la.acquireTime ?? ''}/${la.transitions ?? ''}`, la.acquireTime ?? '');
    if (la.optime !== undefined) kv('status', compactJson({ optime: la.optime, slots: la.slots, retain_slots: la.retain_slots }), rvOf(leaderObj));
    if (la.failsafe !== undefined) kv('failsafe', la.failsafe, rvOf(leaderObj));

    const configObj = byName.get(this.#names.config);
    const ca = annotationsOf(configObj);
    if (ca.config !== undefined) kv('config', ca.config, rvOf(configObj));
    if (ca.initialize !== undefined) kv('initialize', ca.initialize, rvOf(configObj));
    if (ca.history !== undefined) kv('history', ca.history, rvOf(configObj));

    const failoverObj = byName.get(this.#names.failover);
    if (failoverObj !== undefined) {
      const fa = annotationsOf(failoverObj);
      kv('failover', compactJson({ leader: fa.leader, member: fa.member, scheduled_at: fa.scheduled_at }), rvOf(failoverObj));
    }
    const syncObj = byName.get(this.#names.sync);
    const sa = annotationsOf(syncObj);
    if (sa.leader !== undefined || sa.sync_standby !== undefined || sa.quorum !== undefined) {
      kv('sync', compactJson({ leader: sa.leader, quorum: sa.quorum, sync_standby: sa.sync_standby ?? null }), rvOf(syncObj));
    }

    this.#ownPod = undefined;
    for (const pod of pods.items) {
      const name = nameOf(pod);
      const status = annotationsOf(pod).status;
      if (name === this.#o.name) this.#ownPod = { status, labels: labelsOf(pod) };
      if (status !== undefined) kv(`members/${name}`, status, rvOf(pod));
    }
    return decodeCluster(this.prefix, kvs, objs.rv);
  }

  /** The role labels (null: removed) Patroni's touch_member sets for `data`. */
  #roleLabels(data: MemberData): Record<string, string | null> {
    const o = this.#o;
    const role = typeof data.role === 'string' ? data.role : '';
    let value: string | null = null;
    let tmp: string | null = null;
    if (this.#holding()) {
      value = role === 'standby_leader' ? o.standbyLeaderLabelValue : o.leaderLabelValue;
      tmp = 'primary';
    } else if (data.state === 'running' && role !== 'primary' && role !== 'master' && role !== '') {
      value = role === 'replica' ? o.followerLabelValue : role;
      tmp = role;
    }
    const labels: Record<string, string | null> = { [o.roleLabel]: value };
    if (o.tmpRoleLabel !== undefined) labels[o.tmpRoleLabel] = tmp;
    const boot = typeof data.state === 'string' && BOOTSTRAP_STATES.has(data.state);
    for (const [k, v] of Object.entries(o.bootstrapLabels ?? {})) labels[k] = boot ? v : null;
    return labels;
  }

  #holding(): boolean {
    const l = this.#lease;
    return l !== undefined && this.#now() - l.renewedAt <= l.ttl * 1000;
  }

  async #patchPod(annotations: Patch, labels: Record<string, string | null>, op: Op): Promise<Obj | 'absent'> {
    const r = await this.#objs.patch('pods', this.#o.name, annotations, undefined, op, { labels });
    if (r === 'conflict') throw new DcsError('DCS_PROTOCOL', `kubernetes: PATCH pods/${this.#o.name} refused (409)`, { retryable: false });
    return r;
  }

  async touchMember(data: MemberData, opts?: CallOptions): Promise<void> {
    this.#noCtl('publish a member');
    const value = encodeMember(data);
    const labels = this.#roleLabels(data);
    const own = this.#ownPod;
    if (own !== undefined && own.status === value && Object.entries(labels).every(([k, v]) => (own.labels[k] ?? null) === v)) return;
    const r = await this.#patchPod({ status: value }, labels, this.#op(opts));
    if (r === 'absent') {
      throw new DcsError('DCS_PROTOCOL', `kubernetes: pod ${this.#o.name} not found in namespace ${this.#o.namespace} (the member name must be the pod's name)`, { retryable: false });
    }
    this.#ownPod = { status: annotationsOf(r).status, labels: labelsOf(r) };
    const want = { ...this.#o.labels, [this.#o.scopeLabel]: this.#o.scope };
    if (!this.#warnedLabels && Object.entries(want).some(([k, v]) => this.#ownPod?.labels[k] !== v)) {
      this.#warnedLabels = true;
      this.#o.logger?.warn({ pod: this.#o.name, labels: want }, 'kubernetes: our pod lacks the cluster labels, so no member (Vigil or Patroni) sees it: add them to the pod template');
    }
  }

  async deleteMember(opts?: CallOptions): Promise<void> {
    const labels: Record<string, string | null> = { [this.#o.roleLabel]: null };
    if (this.#o.tmpRoleLabel !== undefined) labels[this.#o.tmpRoleLabel] = null;
    const r = await this.#patchPod({ status: null }, labels, this.#op(opts));
    this.#ownPod = r === 'absent' ? undefined : { status: undefined, labels: labelsOf(r) };
  }

  async attemptInitialize(opts?: CallOptions): Promise<boolean> {
    const op = this.#op(opts);
    const cur = await this.#objs.get(this.#objs.resource, this.#names.config, op);
    if (cur === undefined) return typeof (await this.#objs.create(this.#names.config, { initialize: '' }, op)) !== 'string';
    if (annotationsOf(cur).initialize !== undefined) return false;
    return typeof (await this.#objs.patch(this.#objs.resource, this.#names.config, { initialize: '' }, rvOf(cur), op)) !== 'string';
  }

  async writeInitialize(sysid: string, opts?: CallOptions): Promise<void> {
    await this.#objs.patchOrCreate(this.#names.config, { initialize: sysid }, undefined, this.#op(opts));
  }

  async deleteInitialize(opts?: CallOptions): Promise<void> {
    await this.#objs.patch(this.#objs.resource, this.#names.config, { initialize: null }, undefined, this.#op(opts));
  }

  async acquireLeader(opts?: CallOptions): Promise<boolean> {
    this.#noCtl('take the leader lock');
    const op = this.#op(opts);
    const cur = await this.#objs.get(this.#objs.resource, this.#names.leader, op);
    const ann = this.#observe(cur);
    if (ann.leader !== undefined && ann.leader !== '' && !this.#expired(ann)) return false;
    return this.#take(cur, true, op);
  }

  async takeLeader(opts?: CallOptions): Promise<void> {
    this.#noCtl('take the leader lock');
    const op = this.#op(opts);
    for (let i = 0; i < 3; i++) {
      const cur = await this.#objs.get(this.#objs.resource, this.#names.leader, op);
      this.#observe(cur);
      if (await this.#take(cur, false, op)) return;
    }
    throw new DcsError('DCS_UNAVAILABLE', 'kubernetes: could not write the leader record (it kept changing)');
  }

  /**
   * One PATCH of renewTime in the usual case: the leader object the cycle's readCluster listed
   * (its resourceVersion guards the write) when it shows our current lease, as Patroni renews from
   * its cache; a GET first otherwise, and after a 409. Fewer requests per cycle leave less of the
   * primary's time to an API server that stops answering between the read and the refresh (the
   * fence deadline runs from the last refresh, not from the cycle's read).
   */
  async refreshLeader(opts?: CallOptions): Promise<boolean> {
    this.#noCtl('hold the leader lock');
    const op = this.#op(opts);
    let seen = this.#leaderSeen;
    this.#leaderSeen = undefined;
    for (let i = 0; i < 3; i++) {
      const sa = annotationsOf(seen);
      const usable = seen !== undefined && this.#lease !== undefined && sa.leader === this.#o.name && sa.acquireTime === this.#lease.acquireTime && this.#lease.ttl === this.#ttl && this.#holding();
      const cur = usable ? seen : await this.#objs.get(this.#objs.resource, this.#names.leader, op);
      seen = undefined;
      const ann = this.#observe(cur);
      if (cur === undefined || ann.leader === undefined || ann.leader === '') return this.#take(cur, true, op);
      if (ann.leader !== this.#o.name) {
        this.#lease = undefined;
        return false;
      }
      const lease = this.#lease;
      if (lease === undefined || lease.ttl !== this.#ttl || lease.acquireTime !== ann.acquireTime || !this.#holding()) return this.#take(cur, true, op);
      const start = this.#now();
      const r = await this.#objs.patch(this.#objs.resource, this.#names.leader, { renewTime: this.#stamp(), ttl: String(this.#ttl) }, rvOf(cur), op, this.#subsets(true));
      if (typeof r !== 'string') {
        lease.renewedAt = start;
        this.#observe(r);
        return true;
      }
    }
    return false;
  }

  async releaseLeader(opts?: CallOptions): Promise<boolean> {
    const op = this.#op(opts);
    const cur = await this.#objs.get(this.#objs.resource, this.#names.leader, op);
    const ann = this.#observe(cur);
    this.#lease = undefined;
    if (cur === undefined || ann.leader !== this.#o.name) return false;
    const r = await this.#objs.patch(this.#objs.resource, this.#names.leader, { leader: null }, rvOf(cur), op, this.#subsets(false));
    if (typeof r === 'string') return false;
    this.#observe(r);
    return true;
  }

  async writeConfig(config: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    if (unusableConfigVersion(version)) return false;
    return (await this.#objs.patchOrCreate(this.#names.config, { config: encodeConfig(config) }, version, this.#op(opts))) !== undefined;
  }

  async writeFailover(value: Record<string, unknown>, version?: string, opts?: CallOptions): Promise<boolean> {
    const ann: Patch = {};
    for (const k of ['leader', 'member', 'scheduled_at']) {
      const v = value[k];
      ann[k] = typeof v === 'string' && v !== '' ? v : null;
    }
    return (await this.#objs.patchOrCreate(this.#names.failover, ann, version, this.#op(opts))) !== undefined;
  }

  async writeSync(value: { leader: string; quorum: number | null; sync_standby: string | null }, version?: string, opts?: CallOptions): Promise<boolean> {
    const ann: Patch = { leader: value.leader, quorum: value.quorum === null ? null : String(value.quorum), sync_standby: value.sync_standby };
    return (await this.#objs.patchOrCreate(this.#names.sync, ann, version, this.#op(opts))) !== undefined;
  }

  async deleteSync(version?: string, opts?: CallOptions): Promise<boolean> {
    const r = await this.#objs.patch(this.#objs.resource, this.#names.sync, { leader: null, quorum: null, sync_standby: null }, version, this.#op(opts));
    if (r === 'conflict') return false;
    return r !== 'absent' || version === undefined;
  }

  async writeHistory(history: HistoryLine[], opts?: CallOptions): Promise<void> {
    await this.#objs.patchOrCreate(this.#names.config, { history: encodeHistory(history) }, undefined, this.#op(opts));
  }

  async writeStatus(status: LeaderStatus, opts?: CallOptions): Promise<void> {
    const slots = status.slots && Object.keys(status.slots).length > 0 ? compactJson(status.slots) : null;
    const retain = status.retain_slots && status.retain_slots.length > 0 ? compactJson(status.retain_slots) : null;
    await this.#objs.patchOrCreate(this.#names.leader, { optime: String(status.optime), slots, retain_slots: retain }, undefined, this.#op(opts));
  }

  async writeFailsafe(value: Record<string, string>, opts?: CallOptions): Promise<void> {
    await this.#objs.patchOrCreate(this.#names.leader, { failsafe: encodeFailsafe(value) }, undefined, this.#op(opts));
  }

  /** Delete the cluster's objects and clear the member annotations of its pods (the pods stay). */
  async deleteCluster(opts?: CallOptions): Promise<void> {
    const op = this.#op(opts);
    const [objs, pods] = await Promise.all([this.#objs.list(this.#objs.resource, op), this.#objs.list('pods', op)]);
    for (const o of objs.items) await this.#objs.delete(this.#objs.resource, nameOf(o), op);
    for (const p of pods.items) {
      if (annotationsOf(p).status === undefined) continue;
      await this.#objs.patch('pods', nameOf(p), { status: null }, undefined, op, { labels: { [this.#o.roleLabel]: null } });
    }
    this.#ownPod = undefined;
    this.#lease = undefined;
  }

  /** Wakes when the `leader` annotation changes after `revision` (a readCluster revision). */
  async watchLeader(revision: string, timeoutMs: number, opts?: CallOptions): Promise<void> {
    if (this.#closed || opts?.signal?.aborted) return;
    const baseline = this.#lastRead?.revision === revision ? this.#lastRead.holder : undefined;
    const ctrl = new AbortController();
    const stop = (): void => ctrl.abort();
    const timer = setTimeout(stop, timeoutMs);
    opts?.signal?.addEventListener('abort', stop, { once: true });
    this.#watches.signal.addEventListener('abort', stop, { once: true });
    const path = apiPath(this.#o.namespace, this.#objs.resource, undefined, {
      watch: '1',
      resourceVersion: revision,
      fieldSelector: `metadata.name=${this.#names.leader}`,
      timeoutSeconds: String(Math.max(1, Math.ceil(timeoutMs / 1000))),
    });
    try {
      for await (const ev of this.#api.watch(path, ctrl.signal)) {
        if (ev.type === 'BOOKMARK') continue;
        if (ev.type === 'ERROR') return;
        const holder = ev.type === 'DELETED' ? '' : (annotationsOf(ev.object).leader ?? '');
        if (baseline === undefined || holder !== baseline) return;
      }
      // The stream ended (server timeout or failure): wait out our own timeout, never spin.
      if (!ctrl.signal.aborted) await new Promise<void>((resolve) => ctrl.signal.addEventListener('abort', () => resolve(), { once: true }));
    } finally {
      clearTimeout(timer);
      opts?.signal?.removeEventListener('abort', stop);
      this.#watches.signal.removeEventListener('abort', stop);
    }
  }

  setTtl(ttlSeconds: number): void {
    this.#ttl = ttlSeconds;
  }

  setRetryTimeout(seconds: number): void {
    this.#retryMs = seconds * 1000;
  }

  /**
   * Stop. Unless keepLease (or a control client), first release the leader record if we hold it
   * and remove our member annotation (best effort, within the retry timeout), so both vanish at
   * once; with keepLease they stay and the record expires in the readers' eyes after its ttl.
   */
  async close(opts?: { keepLease?: boolean }): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watches.abort();
    if (opts?.keepLease !== true && this.#o.ctl !== true) {
      if (this.#lease !== undefined) await this.releaseLeader().catch(() => false);
      if (this.#ownPod?.status !== undefined) await this.deleteMember().catch(() => undefined);
    }
    this.#lease = undefined;
    this.#api.close();
  }
}
