//! Restore Desk's benchmark suite. Every figure is measured next to a
//! baseline in the same run, on the same machine, and printed as a ratio.
//!
//!     cargo bench --bench suite            # everything
//!     cargo bench --bench suite -- engine  # only figures whose name contains "engine"
//!     QUICK=1 cargo bench --bench suite    # fewer iterations
//!
//! It needs PostgreSQL on 127.0.0.1:5432 (or BENCH_PG_URL), and `wrk` for
//! the HTTP figures (installed by benches/run). The restore figure runs
//! real PostgreSQL 15 servers and pgBackRest as the `postgres` OS user, so
//! it runs as root, like the real-restore tests.

#[path = "suite/engine.rs"]
mod engine;
#[path = "../tests/common/fleet.rs"]
#[allow(dead_code)]
mod fleet;
#[path = "suite/mail.rs"]
mod mail;
#[path = "suite/restore.rs"]
mod restore;
#[path = "suite/support.rs"]
mod support;

use support::{Figure, print_table};

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut figures: Vec<Figure> = Vec::new();
    runtime.block_on(async {
        if wanted("engine") {
            figures.extend(engine::run().await);
        }
        if wanted("mail") {
            figures.extend(mail::run().await);
        }
        if wanted("restore") {
            figures.extend(restore::run().await);
        }
    });
    print_table(&figures);
}
