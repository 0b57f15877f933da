//! Serving the router over TCP with the limits a public service needs:
//! deadlines for a request's headers and body, an idle keep-alive
//! timeout, a cap on concurrent connections, and a graceful shutdown that
//! drains for a bounded time.
//!
//! `axum::serve` has none of these (a client that sends half a request
//! holds its connection, and the shutdown, forever), so the app runs its
//! own accept loop over hyper.
//!
//! * [`ServerLimits`]: the `app.server:` settings and their defaults.
//! * [`ConnectionClock`]: what a connection is doing and since when.
//! * [`TrackedIo`]: the socket, telling the clock when bytes move.
//! * [`read_body`]: middleware reading a request body within its deadline.
//! * [`serve`]: the accept loop and the shutdown.

mod body_deadline;
mod connection_clock;
mod limits;
mod server;
mod tracked_io;

pub use body_deadline::{BodyDeadline, read_body};
pub use connection_clock::{ConnectionClock, InFlight, Verdict};
pub use limits::ServerLimits;
pub use server::serve;
pub use tracked_io::TrackedIo;
