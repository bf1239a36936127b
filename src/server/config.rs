//! `ServeConfig`: everything `ssebench serve` needs, checked, with the built-in server's defaults.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{DriverChoice, PinChoice};
use crate::limits;
use crate::server::openai::ModelShape;

/// The model `serve --openai` serves unless `--model-name` names another (and `run --openai` asks for by default).
pub const DEFAULT_MODEL_NAME: &str = "ssebench-sim";

/// Everything `ssebench serve` needs, checked.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen addresses; every thread listens on each. Never empty.
    pub addrs: Vec<SocketAddr>,
    pub threads: usize,
    pub driver: DriverChoice,
    /// `Auto` pins (`runtime::pin_for_serving`).
    pub pin: PinChoice,
    /// Events per stream; 0 streams forever.
    pub events: u64,
    pub interval: Duration,
    /// Bytes in each event's `data:` value (the send timestamp counts towards it).
    pub size_bytes: usize,
    pub first_delay: Duration,
    /// Each event is sent up to this much earlier or later than its schedule.
    pub jitter: Duration,
    /// Serve these bytes verbatim (a whole HTTP response) instead of generated events.
    pub replay: Option<Vec<u8>>,
    /// Write replayed bytes in pieces of this size, pausing `replay_pause` between them.
    pub replay_write_bytes: usize,
    pub replay_pause: Duration,
    /// Cut each connection after this many events (no last chunk); `None` never.
    pub disconnect_after: Option<u64>,
    /// `--pause-every`: silences in every generated stream; `None` never.
    pub pauses: Option<Pauses>,
    /// `--x-accel-buffering`: what every streaming head says to nginx about buffering.
    pub accel_buffering: AccelBuffering,
    /// `--openai`: answer `/v1/chat/completions` and `/v1/completions` as a model would.
    pub openai: Option<ModelShape>,
    /// `--model-name`: the model `--openai` serves, listed by `GET /v1/models` and named in answers to requests
    /// that name none.
    pub model_name: String,
    /// `--tls-cert`/`--tls-key`: serve HTTPS with this config.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ServeConfig {
    /// The command line's defaults on `addr`: 100 events of 100 bytes, 100 ms apart, no first delay or jitter,
    /// every core, auto driver, plain HTTP.
    pub fn new(addr: SocketAddr) -> ServeConfig {
        ServeConfig {
            addrs: vec![addr],
            threads: limits::available_cores(),
            driver: DriverChoice::Auto,
            pin: PinChoice::Auto,
            events: 100,
            interval: Duration::from_millis(100),
            size_bytes: 100,
            first_delay: Duration::ZERO,
            jitter: Duration::ZERO,
            replay: None,
            replay_write_bytes: 64 * 1024,
            replay_pause: Duration::ZERO,
            disconnect_after: None,
            pauses: None,
            accel_buffering: AccelBuffering::No,
            openai: None,
            model_name: DEFAULT_MODEL_NAME.into(),
            tls: None,
        }
    }
}

/// The `X-Accel-Buffering` header of every streaming head, which nginx reads to turn its proxy buffering off (`no`)
/// or on (`yes`) for one response. `Omit` leaves it out, so what a proxy does is its own configuration's choice:
/// the case to test when a real backend does not send the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelBuffering {
    No,
    Yes,
    Omit,
}

/// `--pause-every N --pause T [--heartbeat H]`: after every N events of a stream it is silent for T, but for a
/// comment every H, so a proxy's read timeout or buffering can be seen at work. A heartbeat without pauses cannot
/// be written down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pauses {
    /// A pause follows every this many events of one response (counted from its first event, resumed or not).
    pub every_events: NonZeroU64,
    /// How long each pause lasts; every later event's slot moves by as much.
    pub pause: Duration,
    /// An SSE comment every this long inside each pause, never outside one; never zero.
    pub heartbeat: Option<Duration>,
}
