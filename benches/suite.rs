//! Restore Desk's benchmark suite. Every figure is measured next to a
//! baseline in the same run, on the same machine, and printed as a ratio.
//!
//!     cargo bench --bench suite            # everything
//!     cargo bench --bench suite -- engine  # only figures whose name contains "engine"
//!     QUICK=1 cargo bench --bench suite    # fewer iterations
//!
//! It needs PostgreSQL on 127.0.0.1:5432 (or BENCH_PG_URL), `wrk` and
//! `taskset` for the HTTP figures, and pgBackRest with PostgreSQL 15 for the
//! restore and transactions figures, whose servers run as the `postgres` OS user (so the suite
//! runs as root, like the real-restore tests). `bash benches/run` installs
//! what is missing and runs it.

#[path = "suite/engine.rs"]
mod engine;
#[path = "../tests/common/fleet.rs"]
#[allow(dead_code)]
mod fleet;
#[path = "suite/mail.rs"]
mod mail;
#[path = "suite/restore.rs"]
mod restore;
#[path = "../tests/common/seeded.rs"]
#[allow(dead_code)]
mod seeded;
#[path = "suite/support.rs"]
mod support;
#[path = "suite/transactions.rs"]
mod transactions;
#[path = "suite/web.rs"]
mod web;

use support::{Figure, print_table};

fn main() {
    // The suite starts copies of itself for baselines that must run pinned
    // to a CPU of their own.
    if std::env::var("BENCH_ROLE").as_deref() == Ok("filing-baseline") {
        web::filing_baseline_child();
        return;
    }
    {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(support::StatementCounter),
        )
        .expect("the statement counter");
    }
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
        if wanted("web") || wanted("memory") {
            figures.extend(web::run().await);
        }
        if wanted("mail") {
            figures.extend(mail::run().await);
        }
        if wanted("restore") {
            figures.extend(restore::run().await);
        }
        if wanted("transactions") {
            figures.extend(transactions::run().await);
        }
    });
    print_table(&figures);
}
