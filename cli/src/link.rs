//! `glassbox link encode|decode`: share links (glassbox_core::share) from the command line.
//!
//!   glassbox link encode EXPERIMENT.json [--widget KIND] [--static] [--base URL]   print the link's fragment
//!   glassbox link decode LINK                                                   print the experiment's JSON
//!
//! `decode` takes a fragment (`v1/...`), with its `#`, or a whole URL; it prints the experiment
//! as pretty JSON on stdout (so `decode` then `encode` round-trips) and the embed parameters,
//! when there are any, on stderr.

use std::path::PathBuf;

use clap::Subcommand;
use glassbox_core::share::{self, Widget};
use glassbox_core::Experiment;

use crate::CliResult;

#[derive(Debug, Subcommand)]
pub enum LinkCmd {
    /// Print the share-link fragment of an experiment (a JSON file; `-` reads stdin).
    Encode {
        /// The experiment's JSON (glassbox_core::Experiment).
        file: PathBuf,
        /// Embed: show this widget alone (predictions, attention, neurons, lens, attribution, patching).
        #[arg(long, value_name = "KIND")]
        widget: Option<Widget>,
        /// Embed: frozen, without controls.
        #[arg(long = "static")]
        frozen: bool,
        /// Print a whole URL: this page's address, `#`, the fragment.
        #[arg(long, value_name = "URL")]
        base: Option<String>,
    },
    /// Print the experiment of a link (a fragment, `#fragment` or a whole URL) as JSON.
    Decode {
        /// The link.
        link: String,
    },
}

pub fn run(cmd: LinkCmd) -> CliResult<()> {
    match cmd {
        LinkCmd::Encode { file, widget, frozen, base } => {
            let text = if file.as_os_str() == "-" { std::io::read_to_string(std::io::stdin())? } else { std::fs::read_to_string(&file)? };
            let e = Experiment::from_json(&text)?;
            share::check(&e)?;
            let f = share::fragment(&e, widget, frozen);
            match base {
                Some(b) => println!("{}#{f}", b.split('#').next().unwrap_or_default()),
                None => println!("{f}"),
            }
            eprintln!("{} characters (experiment JSON: {} bytes)", f.len(), e.to_json().len());
        }
        LinkCmd::Decode { link } => {
            let f = share::parse_fragment(&link)?;
            println!("{}", serde_json::to_string_pretty(&f.experiment)?);
            if f.widget.is_some() || f.frozen {
                eprintln!("embed: widget={} static={}", f.widget.map_or("none", Widget::name), u8::from(f.frozen));
            }
        }
    }
    Ok(())
}
