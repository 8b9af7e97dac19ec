//! Helpers shared by the example binaries: tiny flag parsing.

/// Returns the value after `--name` in the process arguments, if present.
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

/// Whether `--name` is present.
pub fn switch(name: &str) -> bool {
    std::env::args().skip(1).any(|a| a == format!("--{name}"))
}

/// The `--runtime` flag (default `tokio`); exits with a message for an unknown one.
pub fn runtime() -> String {
    let rt = flag("runtime").unwrap_or_else(|| "tokio".to_owned());
    if !["tokio", "tokio-current-thread"].contains(&rt.as_str()) {
        eprintln!("unknown --runtime {rt}: expected tokio or tokio-current-thread");
        std::process::exit(2);
    }
    rt
}

/// Builds the tokio runtime named by `--runtime`.
pub fn tokio_runtime() -> tokio::runtime::Runtime {
    let builder = match runtime().as_str() {
        "tokio-current-thread" => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    };
    let mut builder = builder;
    builder.enable_all().build().expect("tokio runtime")
}
