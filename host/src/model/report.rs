//! What the agent reports about itself: how it is doing (`GET /api/v1/status`), its packs
//! (`GET /api/v1/packs`), the audit trail of its setup. One struct each, serialised for the
//! API and read back by the CLI, used as they are by the console: a renamed field is a
//! compile error, not a blank column.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the agent is doing, as `GET /api/v1/status` answers (the console's agent page and
/// `vigilo status` show it; `/metrics` the same figures). The default is an agent that has
/// done nothing yet.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusReport {
    /// Events evaluated since start (what they caused stored).
    pub events: u64,
    /// Events per second over the last minute, one decimal.
    pub events_per_second: f64,
    /// Alarms stored since start.
    pub alarms: u64,
    /// Alarms fired since local midnight (from the store: restarts included).
    pub alarms_today: u64,
    /// Rule sets installed since start (1: the one it started with).
    pub generation: u64,
    /// Each source (or half of one) by name: whether it runs, and what it does or why not.
    pub sources: BTreeMap<String, SourceStatus>,
    /// Plugins and scripts loaded, with their counts and whether they are switched off.
    pub programs: Vec<ProgramStatus>,
    /// From a source seeing something to its alarm being stored (none measured yet: `null`).
    pub latency: Option<Latency>,
    /// What was dropped under load, by what it was.
    pub shed: BTreeMap<String, u64>,
    /// The actions' outbox.
    pub outbox: OutboxFigures,
    /// The store.
    pub store: StoreSize,
    /// A hub's ingest of what agents forward (absent on an agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetIngest>,
}

/// What a hub took from the bus since it started.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FleetIngest {
    /// Alarms stored.
    pub stored: u64,
    /// Messages that arrived again and changed nothing.
    pub repeats: u64,
    /// Messages refused (not a forwarded alarm, another form, an impostor, a capture whose
    /// bytes are not the ones its agent sent).
    pub refused: u64,
    /// Captures fetched and kept.
    pub captures: u64,
    /// From an agent committing an alarm to this hub committing it, as the two clocks tell
    /// (none yet: `null`).
    pub lag: Option<Latency>,
}

/// The outbox in a status report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct OutboxFigures {
    /// Actions waiting to be performed (or retried).
    pub pending: u64,
    /// Actions given up.
    pub dead: u64,
}

/// The store in a status report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StoreSize {
    /// The database's size on disk, its write-ahead log included.
    pub bytes: u64,
}

/// Whether a source runs, and what it says about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceStatus {
    /// Running.
    pub up: bool,
    /// What it watches, or why it does not.
    pub detail: String,
}

/// A plugin's or script's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgramStatus {
    /// Its pack.
    pub pack: String,
    /// Its name.
    pub name: String,
    /// `plugin` or `script`.
    pub kind: String,
    /// Switched off: after faults, or for its time.
    pub quarantined: bool,
    /// Why it was switched off.
    pub switched_off: Option<String>,
    /// The last fault of a call, switched off or not.
    pub last_fault: Option<String>,
    /// Calls made since it started.
    pub calls: u64,
    /// Calls that faulted.
    pub faults: u64,
    /// Mean time per call, in microseconds.
    pub us_per_call: u64,
}

/// How long from a source seeing something to the alarm it caused being stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// Alarm-raising events measured.
    pub count: u64,
    /// Median, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// Slowest, milliseconds.
    pub max_ms: f64,
}

/// A pack as the API lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackInfo {
    /// Name.
    pub name: String,
    /// The running (or, when disabled, the selected) version.
    pub version: String,
    /// Whether it runs.
    pub enabled: bool,
    /// Who publishes it.
    pub publisher: Option<String>,
    /// What it is for.
    pub description: Option<String>,
    /// Signature state, in words.
    pub signature: String,
    /// Its grants, in words.
    pub grants: String,
    /// Alarm names.
    pub alarms: Vec<String>,
    /// Plugin files.
    pub plugins: Vec<String>,
    /// Script files.
    pub scripts: Vec<String>,
    /// Every uploaded version, oldest first (none for the built-in pack).
    pub versions: Vec<PackVersion>,
}

/// One uploaded version of a pack.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackVersion {
    /// Row id.
    pub id: i64,
    /// The pack's version.
    pub version: String,
    /// SHA-256 of the archive, hex.
    pub sha256: String,
    /// When it was uploaded (UTC).
    pub uploaded_at: String,
    /// Who uploaded it.
    pub uploaded_by: String,
}

/// One change to the monitoring setup.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// When (UTC, RFC 3339 with milliseconds).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What: `pack_uploaded`, `pack_enabled`, `pack_disabled`, `pack_rolled_back`,
    /// `pack_rejected`, `plugin_quarantined`, `script_quarantined`.
    pub action: String,
    /// On what: a pack (`acme-dlp 1.4.0`), a plugin (`pack/plugin`).
    pub object: String,
    /// More, in words.
    pub detail: Option<String>,
}

/// What an agent in a fleet says about itself every little while (a heartbeat): the hub's
/// Agents page, and how it knows who stopped reporting.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heartbeat {
    /// The form version ([`crate::model::FORM_VERSION`]) the sender wrote.
    pub form: u32,
    /// The agent's id in the fleet.
    pub agent: String,
    /// Its computer's host name.
    pub host: String,
    /// The agent's version.
    pub version: String,
    /// The operating system it runs on (`linux`, `windows`…).
    pub os: String,
    /// When it was sent (UTC, RFC 3339).
    pub at: String,
    /// Each running pack: name and version.
    pub packs: Vec<(String, String)>,
    /// When its latest alarm fired, if it has any (UTC, RFC 3339).
    #[serde(default)]
    pub last_alarm: Option<String>,
    /// How it is doing: sources, programs, outbox (its own alarms waiting for the bus too).
    pub status: StatusReport,
    /// Its activity records per user and hour over the last [`ACTIVITY_HOURS`] hours — totals,
    /// newest hours first, at most [`ACTIVITY_ROWS`] —, so the hub ranks users over all their
    /// computers. Totals, not increments: a heartbeat the hub missed loses nothing the next
    /// one does not carry again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<ActivityCount>,
    /// Its tags (`[fleet] tags`), which packs and alarms may target.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Each pack the fleet published that this agent heard of: the version it last took or
    /// refused, and how that went (at most [`ROLLOUT_ROWS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollout: Vec<PackRollout>,
}

/// At most this many published packs in a heartbeat's rollout (and at most
/// [`ROLLOUT_ERRORS`] errors each): a heartbeat stays one bus message.
pub const ROLLOUT_ROWS: usize = 200;

/// At most this many errors per refused pack in a heartbeat.
pub const ROLLOUT_ERRORS: usize = 20;

/// A pack published to the fleet, and where it runs: what the hub's Packs page and
/// `vigilo pack rollout` show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetPack {
    /// The pack's name.
    pub name: String,
    /// The version published now.
    pub version: String,
    /// Who published it, and when (UTC, RFC 3339).
    pub published_by: String,
    /// When.
    pub published_at: String,
    /// Whom it is for, in words (`everyone`, `tag department=finance`).
    pub targets: String,
    /// How many agents run each version of it (by their last heartbeats).
    pub running: BTreeMap<String, usize>,
    /// The agents that did not take the published version, by why.
    pub refused: Vec<RefusedBy>,
    /// Agents that have not said yet (fetching it, or not reporting).
    pub waiting: usize,
}

/// The agents that did not take a published version for one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedBy {
    /// Why.
    pub state: RolloutState,
    /// Which agents (their ids, sorted).
    pub agents: Vec<String>,
    /// What the first of them said.
    pub errors: Vec<String>,
}

/// How one published pack fares on one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRollout {
    /// The pack's name.
    pub name: String,
    /// The version published (that the agent took, or refused).
    pub version: String,
    /// How it went.
    pub state: RolloutState,
    /// Why, for a refusal: every problem found (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// When the agent decided (UTC, RFC 3339).
    pub at: String,
}

/// Where a published pack stands on one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// It runs that version.
    Running,
    /// Its signature is missing, by a key the agent does not trust, or does not verify.
    BadSignature,
    /// It does not load here (alarms, plugins, scripts, or the set with it).
    DoesNotLoad,
    /// It needs a newer agent (`min_agent_version`).
    AgentTooOld,
    /// Its targets leave this computer out.
    NotTargeted,
    /// The archive could not be fetched or is not the one published (size, SHA-256).
    NotFetched,
}

impl RolloutState {
    /// In words, as the hub's Packs page and `vigilo pack rollout` say it.
    pub fn words(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::BadSignature => "bad signature",
            RolloutState::DoesNotLoad => "does not load",
            RolloutState::AgentTooOld => "agent too old",
            RolloutState::NotTargeted => "not targeted",
            RolloutState::NotFetched => "not fetched",
        }
    }
}

/// How many hours back a heartbeat's activity totals reach: a hub (or bus) away longer than
/// this misses the counts of the hours before.
pub const ACTIVITY_HOURS: i64 = 48;

/// At most this many (user, hour) totals in a heartbeat (a terminal server's thousands of
/// users must not make it bigger than a bus message may be).
pub const ACTIVITY_ROWS: usize = 5_000;

/// Activity records of one user in one UTC hour: what risk scores divide by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityCount {
    /// Who.
    pub user: String,
    /// The hour's start, in the store's UTC form (`2026-11-02T09:00:00.000Z`).
    pub hour: String,
    /// How many activity records.
    pub records: u64,
}

/// An agent as the hub knows it: its last heartbeat, when that came, and whether it still
/// reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentSeen {
    /// The agent's id.
    pub agent: String,
    /// When the hub last heard from it (UTC, RFC 3339).
    pub last_seen: String,
    /// False once it has been silent longer than the hub allows (until it reports again).
    pub reporting: bool,
    /// What it said last.
    pub heartbeat: Heartbeat,
}
