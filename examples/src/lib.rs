//! Helpers shared by the example binaries: flag parsing and `--runtime` selection.

/// Returns the value after `--name` (or `--name=value`) in the process arguments.
pub fn flag(name: &str) -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix(&format!("--{name}=")) {
            return Some(value.to_owned());
        }
        if arg == format!("--{name}") {
            return args.next();
        }
    }
    None
}

/// With `--log` (or `--log=LEVEL`, default `debug`), prints sansock's `tracing` events to
/// stderr: connections opened and closed with addresses, handshakes, errors, backpressure.
pub fn init_logging() {
    let level = std::env::args().skip(1).find_map(|a| {
        if a == "--log" {
            Some("debug".to_owned())
        } else {
            a.strip_prefix("--log=").map(str::to_owned)
        }
    });
    if let Some(level) = level {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(level))
            .with_writer(std::io::stderr)
            .init();
    }
}

/// The runtimes an example can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rt {
    /// tokio, multi-thread.
    Tokio,
    /// tokio, current-thread.
    TokioCurrentThread,
    /// smol.
    Smol,
    /// async-std.
    AsyncStd,
}

/// The `--runtime` flag (default `tokio`); exits with a message for an unknown one.
pub fn runtime() -> Rt {
    match flag("runtime").as_deref().unwrap_or("tokio") {
        "tokio" => Rt::Tokio,
        "tokio-current-thread" => Rt::TokioCurrentThread,
        "smol" => Rt::Smol,
        "async-std" => Rt::AsyncStd,
        other => {
            eprintln!("unknown --runtime {other}: expected tokio, tokio-current-thread, smol or async-std");
            std::process::exit(2);
        }
    }
}

/// Runs the generic `async fn $main<R: sansock_io::Runtime>()` on the runtime `--runtime`
/// names.
#[macro_export]
macro_rules! run_on_selected_runtime {
    ($main:ident) => {{
        $crate::init_logging();
        match $crate::runtime() {
            $crate::Rt::Tokio => ::tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on($main::<::sansock_tokio::Tokio>()),
            $crate::Rt::TokioCurrentThread => ::tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime")
                .block_on($main::<::sansock_tokio::Tokio>()),
            $crate::Rt::Smol => ::smol::block_on($main::<::sansock_smol::Smol>()),
            $crate::Rt::AsyncStd => {
                ::async_std::task::block_on($main::<::sansock_async_std::AsyncStd>())
            }
        }
    }};
}
