//! Minimal flag parsing: `SUBCOMMAND [--name value | --name=value | --switch]...`.

/// The process arguments after the program name.
pub struct Args(Vec<String>);

impl Args {
    pub fn from_env() -> Self {
        Args(std::env::args().skip(1).collect())
    }

    /// The first argument, when it is not a flag.
    pub fn subcommand(&self) -> Option<&str> {
        self.0
            .first()
            .map(String::as_str)
            .filter(|a| !a.starts_with('-'))
    }

    /// The value after `--name` (or `--name=value`).
    pub fn value(&self, name: &str) -> Option<String> {
        let long = format!("--{name}");
        let prefix = format!("--{name}=");
        let mut it = self.0.iter();
        while let Some(arg) = it.next() {
            if let Some(v) = arg.strip_prefix(&prefix) {
                return Some(v.to_owned());
            }
            if *arg == long {
                return it.next().cloned();
            }
        }
        None
    }

    /// Whether the switch `--name` is present.
    pub fn switch(&self, name: &str) -> bool {
        let long = format!("--{name}");
        self.0.contains(&long)
    }

    /// A comma-separated list flag.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.value(name).map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
    }

    /// A parsed flag value, exiting with a message when it does not parse.
    pub fn parsed<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        self.value(name).map(|v| {
            v.parse().unwrap_or_else(|_| {
                eprintln!("sansock-bench: bad value {v:?} for --{name}");
                std::process::exit(2)
            })
        })
    }

    /// Every argument, as given.
    pub fn all(&self) -> &[String] {
        &self.0
    }
}
