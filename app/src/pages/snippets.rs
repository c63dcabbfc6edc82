//! Ready-to-copy ways to call a service from outside the dashboard: curl, oscar-python and
//! oscar-cli, synchronously (`/run`) and asynchronously (`/job`, or a file in its input
//! folder), with this server's address and, once revealed, the service's token filled in.

/// A client people call services with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Curl,
    Python,
    Cli,
}

impl Client {
    pub const ALL: [Client; 3] = [Self::Curl, Self::Python, Self::Cli];

    pub fn label(self) -> &'static str {
        match self {
            Self::Curl => "curl",
            Self::Python => "Python (oscar-python)",
            Self::Cli => "oscar-cli",
        }
    }
}

/// What the snippets name.
pub struct Target<'a> {
    /// This server's address, as the browser reaches it.
    pub origin: &'a str,
    pub service: &'a str,
    /// The service's token, once its owner revealed it.
    pub token: Option<&'a str>,
    /// Who is signed in: the local admin's username, or None for an OIDC user (who signs
    /// clients in with an access token).
    pub local_user: Option<&'a str>,
    /// Whether the service has an input folder a file can be put in.
    pub has_input: bool,
}

/// Stands for the token until it is revealed.
pub const TOKEN_PLACEHOLDER: &str = "<token: press Reveal token>";

/// The snippet for `client`: commands or code, comments saying what each part does.
pub fn snippet(client: Client, target: &Target<'_>) -> String {
    let Target {
        origin, service, ..
    } = target;
    let token = target.token.unwrap_or(TOKEN_PLACEHOLDER);
    match client {
        Client::Curl => format!(
            "# Synchronous: the answer is the script's output (base64 when it wrote files)\n\
             curl -X POST -H 'Authorization: Bearer {token}' \\\n  --data-binary @input.txt {origin}/run/{service}\n\n\
             # Asynchronous: 201 and the job's name; its log is on the job's page\n\
             curl -X POST -H 'Authorization: Bearer {token}' \\\n  --data-binary @input.txt {origin}/job/{service}\n"
        ),
        Client::Python => {
            let credentials = match target.local_user {
                Some(user) => format!(
                    "\"user\": {}, \"password\": \"<your password>\"",
                    quoted(user)
                ),
                None => "\"oidc_token\": \"<your access token>\"".to_string(),
            };
            format!(
                "# pip install oscar-python\n\
                 from oscar_python.client import Client\n\n\
                 client = Client({{\"cluster_id\": \"oscar\", \"endpoint\": {endpoint},\n                 {credentials}, \"ssl\": \"True\"}})\n\n\
                 # Synchronous: the output lands in result.txt\n\
                 client.run_service({name}, input=\"input.txt\", output=\"result.txt\")\n\n\
                 # Asynchronous: a job; list_jobs and get_job_logs follow it\n\
                 client.run_service({name}, input=\"input.txt\", async_call=True)\n",
                endpoint = quoted(origin),
                name = quoted(service),
            )
        }
        Client::Cli => {
            let mut text = format!(
                "# Synchronous, with the service's token (no cluster to add)\n\
                 oscar-cli service run {service} --endpoint {origin} --token {token} \\\n  --file-input input.txt --output result.txt\n"
            );
            if target.has_input {
                let login = match target.local_user {
                    Some(user) => format!("{} --password-stdin", shell_quoted(user)),
                    None => "--oidc-account-name <your oidc-agent account>".to_string(),
                };
                text.push_str(&format!(
                    "\n# Asynchronous: a file in the input folder starts a job\n\
                     oscar-cli cluster add oscar {origin} {login}\n\
                     oscar-cli service put-file {service} input.txt --cluster oscar\n"
                ));
            }
            text
        }
    }
}

/// A Python string literal (JSON's escapes are Python's too).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A word the shell passes through as it is.
fn shell_quoted(text: &str) -> String {
    if text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(token: Option<&'static str>, local_user: Option<&'static str>) -> Target<'static> {
        Target {
            origin: "https://oscar.example.eu",
            service: "cowsay",
            token,
            local_user,
            has_input: true,
        }
    }

    #[test]
    fn snippets_name_the_server_the_service_and_the_token_once_revealed() {
        for client in Client::ALL {
            let hidden = snippet(client, &target(None, Some("oscar")));
            assert!(hidden.contains("https://oscar.example.eu"), "{hidden}");
            assert!(hidden.contains("cowsay"), "{hidden}");
            let shown = snippet(client, &target(Some("f00d"), Some("oscar")));
            if client != Client::Python {
                assert!(hidden.contains(TOKEN_PLACEHOLDER), "{hidden}");
                assert!(
                    shown.contains("f00d") && !shown.contains(TOKEN_PLACEHOLDER),
                    "{shown}"
                );
            }
        }
        let curl = snippet(Client::Curl, &target(Some("f00d"), None));
        assert!(
            curl.contains("https://oscar.example.eu/run/cowsay"),
            "{curl}"
        );
        assert!(
            curl.contains("https://oscar.example.eu/job/cowsay"),
            "{curl}"
        );
    }

    #[test]
    fn oidc_users_sign_clients_in_with_tokens() {
        let python = snippet(Client::Python, &target(None, None));
        assert!(python.contains("\"oidc_token\""), "{python}");
        assert!(!python.contains("\"password\""), "{python}");
        let cli = snippet(Client::Cli, &target(None, None));
        assert!(cli.contains("--oidc-account-name"), "{cli}");
    }

    #[test]
    fn names_are_quoted_for_their_language() {
        let python = snippet(Client::Python, &target(None, Some("o\"scar")));
        assert!(python.contains(r#""user": "o\"scar""#), "{python}");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
        assert_eq!(shell_quoted("alice@egi.eu"), "alice@egi.eu");
    }

    #[test]
    fn without_an_input_folder_no_file_is_put() {
        let mut no_input = target(None, Some("oscar"));
        no_input.has_input = false;
        assert!(!snippet(Client::Cli, &no_input).contains("put-file"));
    }
}
