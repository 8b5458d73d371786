//! `vigilo group …`: a fleet's groups, through its hub's API — the names pack targets and
//! alarms' `applies_to` list, and who is in each.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::client::{ApiArgs, Client};
use crate::model::targets::{Group, some_names};

/// `vigilo group`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Every group the hub defines, with its members.
    List {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Make a group, or replace its members: every agent hears of it within moments.
    Set {
        /// Its name: letters, digits, `-`, `_` or `.`.
        name: String,
        /// A member user, by login name; repeat for several, or separate with commas.
        #[arg(long = "user", value_delimiter = ',')]
        users: Vec<String>,
        /// A member computer, by agent id; repeat for several, or separate with commas.
        #[arg(long = "computer", value_delimiter = ',')]
        computers: Vec<String>,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Remove a group: targets that list it match no one through it any more.
    Remove {
        /// Its name.
        name: String,
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(serde::Deserialize)]
struct ListAnswer {
    groups: Vec<Group>,
}

/// Runs `vigilo group …` against the hub whose data folder is `data_dir` (or `--url`).
pub fn run(args: Args, data_dir: &Path) -> Result<u8> {
    match args.what {
        What::List { json, api } => {
            let client = Client::new(&api, data_dir)?;
            client.send_as(
                client.get("/api/v1/fleet/groups"),
                |answer: &ListAnswer, raw| {
                    if json {
                        println!("{}", raw["groups"]);
                    } else {
                        print!("{}", table(&answer.groups));
                    }
                },
            )
        }
        What::Set {
            name,
            users,
            computers,
            description,
            api,
        } => {
            let client = Client::new(&api, data_dir)?;
            let body =
                json!({ "users": users, "computers": computers, "description": description });
            client.send_as(
                client
                    .put(&format!("/api/v1/fleet/groups/{}", path_segment(&name)))
                    .json(&body),
                |g: &Group, _| {
                    println!(
                        "group {}: {} users, {} computers; every agent hears of it",
                        g.name,
                        g.users.len(),
                        g.computers.len()
                    )
                },
            )
        }
        What::Remove { name, api } => {
            let client = Client::new(&api, data_dir)?;
            client.send(
                client.delete(&format!("/api/v1/fleet/groups/{}", path_segment(&name))),
                |_| println!("group {name} removed"),
            )
        }
    }
}

/// A name as one path segment (a group's own name never needs escaping; a wrong one is
/// refused by the hub with its reason, not sent somewhere else).
fn path_segment(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The groups as `vigilo group list` prints them.
fn table(groups: &[Group]) -> String {
    let mut out = format!(
        "{:<20} {:<28} {:<28} UPDATED BY\n",
        "GROUP", "USERS", "COMPUTERS"
    );
    for g in groups {
        out.push_str(&format!(
            "{:<20} {:<28} {:<28} {}\n",
            g.name,
            some_names(&g.users, 3),
            some_names(&g.computers, 3),
            g.updated_by
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_member_list_is_cut_with_its_count() {
        let g = Group {
            name: "finance".into(),
            users: ["ann", "bob", "cat", "dan"].map(String::from).to_vec(),
            computers: vec!["ws-fin-01".into()],
            updated_by: "admin (root)".into(),
            ..Default::default()
        };
        let t = table(&[g]);
        assert!(t.contains("ann, bob, cat, … (4)"), "{t}");
        assert!(t.contains("ws-fin-01"), "{t}");
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
