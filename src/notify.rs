//! Slack notifications (slack-morphism): a Block Kit message per job or rotation result,
//! posted with a bot token to a channel or to an incoming webhook.
//!
//! Notifying never changes a command's result: a Slack error is logged (without the token
//! or the webhook's secret path) and the command exits with its own code. A post that failed
//! in a way a retry can help (rate limited with HTTP 429, a 5xx, Slack unreachable, a
//! transient API error) is retried once ([`SLACK_RETRY`]), after Retry-After when Slack asks
//! for it; a refused post (another 4xx, an API error such as `channel_not_found`) is not.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::config::{Config, Secret};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::{Policy, Retryable};

/// Keys that hold secrets and are refused in the TOML file.
pub const SECRET_KEYS: [&str; 2] = ["slack.bot_token", "slack.webhook_url"];

/// Longest Retry-After honoured before the single retry.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Retry of a Slack post: one, after up to 1 s (or Retry-After).
pub const SLACK_RETRY: Policy = Policy::new(Duration::from_secs(1), Duration::from_secs(1), 2);

/// Slack API error codes that say Slack failed, not the request (a retry may succeed).
const TRANSIENT_API_ERRORS: [&str; 4] = [
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];

/// A failed post, as the retry policy sees it.
struct Failed(SlackClientError);

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe(&self.0))
    }
}

impl Retryable for Failed {
    /// Rate limits, server errors and transport failures may pass; a request Slack refused
    /// (another HTTP status, an API error) is refused again.
    fn kind(&self) -> ErrorKind {
        match &self.0 {
            SlackClientError::RateLimitError(_)
            | SlackClientError::HttpProtocolError(_)
            | SlackClientError::EndOfStream(_) => ErrorKind::Failure,
            SlackClientError::HttpError(h) if h.status_code.is_server_error() => ErrorKind::Failure,
            SlackClientError::ApiError(a) if TRANSIENT_API_ERRORS.contains(&a.code.as_str()) => {
                ErrorKind::Failure
            }
            _ => ErrorKind::BadInput,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match &self.0 {
            SlackClientError::RateLimitError(rl) => Some(
                rl.retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_RETRY_AFTER),
            ),
            _ => None,
        }
    }
}

/// The `[slack]` configuration section: a bot token and channel, or an incoming webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Bot token `xoxb-…` (environment only: `MILVUS_TIER_SLACK__BOT_TOKEN`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<Secret>,
    /// File whose first line is the bot token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token_file: Option<PathBuf>,
    /// Channel id or name for the bot token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// Incoming webhook URL (environment only: `MILVUS_TIER_SLACK__WEBHOOK_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<Secret>,
    /// File whose first line is the webhook URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url_file: Option<PathBuf>,
    /// Slack Web API base URL.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Also notify on success (failures are always notified).
    #[serde(default)]
    pub notify_success: bool,
}

fn default_api_url() -> String {
    "https://slack.com/api".into()
}

impl SlackConfig {
    /// Check the section names exactly one way to post.
    pub fn validate(&self) -> Result<()> {
        let bot = self.bot_token.is_some() || self.bot_token_file.is_some();
        let hook = self.webhook_url.is_some() || self.webhook_url_file.is_some();
        match (bot, hook) {
            (true, true) => {
                return Err(Error::Config(
                    "section [slack]: set either bot_token (with channel) or webhook_url, not both"
                        .into(),
                ));
            }
            (false, false) => {
                return Err(Error::Config(
                    "section [slack]: set bot_token (MILVUS_TIER_SLACK__BOT_TOKEN or bot_token_file) with channel, or webhook_url (MILVUS_TIER_SLACK__WEBHOOK_URL or webhook_url_file)"
                        .into(),
                ));
            }
            (true, false) if self.channel.as_deref().is_none_or(str::is_empty) => {
                return Err(Error::Config(
                    "key `slack.channel` is required with slack.bot_token".into(),
                ));
            }
            _ => {}
        }
        url::Url::parse(&self.api_url)
            .map_err(|e| Error::Config(format!("key `slack.api_url`: `{}`: {e}", self.api_url)))?;
        Ok(())
    }
}

/// Success or failure: decides the header and whether the notice is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// It worked.
    Success,
    /// It did not.
    Failure,
}

/// What to tell Slack.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// Success or failure.
    pub level: Level,
    /// What ran, e.g. `migration` or `partition rotation`.
    pub what: String,
    /// Collection.
    pub collection: String,
    /// Day or range, e.g. `2026-11-20` or `2026-11-20..2026-11-24`.
    pub days: String,
    /// Batch job id, if any.
    pub job_id: Option<String>,
    /// Final status (SUCCEEDED, FAILED, TIMEOUT, …).
    pub status: String,
    /// Why it failed.
    pub reason: Option<String>,
    /// How long it ran.
    pub duration: Option<Duration>,
    /// Rows migrated, when the job's report was read.
    pub rows: Option<i64>,
    /// Bytes migrated, when the job's report was read.
    pub bytes: Option<u64>,
    /// Further labelled lines (log stream, partitions kept, …).
    pub extra: Vec<(String, String)>,
}

impl Notice {
    /// Plain-text fallback (notifications, clients without Block Kit).
    pub fn text(&self) -> String {
        let mut s = format!(
            "milvus-tier {} {}: collection {} {}",
            self.what, self.status, self.collection, self.days
        );
        if let Some(r) = &self.reason {
            s.push_str(&format!(": {r}"));
        }
        s
    }

    /// The Block Kit blocks: a header, then the fields.
    pub fn blocks(&self) -> Vec<SlackBlock> {
        let icon = match self.level {
            Level::Success => "✅",
            Level::Failure => "🚨",
        };
        let header = format!("{icon} milvus-tier {}: {}", self.what, self.status);
        let mut fields = vec![
            ("Collection", self.collection.clone()),
            ("Date(s)", self.days.clone()),
            ("Status", self.status.clone()),
        ];
        if let Some(j) = &self.job_id {
            fields.push(("Job id", j.clone()));
        }
        if let Some(d) = self.duration {
            fields.push(("Duration", format_duration(d)));
        }
        if let Some(r) = self.rows {
            fields.push(("Rows migrated", r.to_string()));
        }
        if let Some(b) = self.bytes {
            fields.push(("Bytes migrated", b.to_string()));
        }
        let field = |(k, v): &(&str, String)| {
            SlackBlockText::MarkDown(SlackBlockMarkDownText::new(format!("*{k}*\n{v}")))
        };
        let mut blocks = vec![
            SlackBlock::Header(SlackHeaderBlock::new(
                SlackBlockPlainText::new(truncate(&header, 150)).into(),
            )),
            SlackBlock::Section(
                SlackSectionBlock::new().with_fields(fields.iter().take(10).map(field).collect()),
            ),
        ];
        if let Some(r) = &self.reason {
            blocks.push(section(&format!("*Reason*\n{}", truncate(r, 2900))));
        }
        for (k, v) in &self.extra {
            blocks.push(section(&format!("*{k}*\n{}", truncate(v, 2900))));
        }
        blocks
    }
}

fn section(text: &str) -> SlackBlock {
    SlackBlock::Section(SlackSectionBlock::new().with_text(SlackBlockText::MarkDown(
        SlackBlockMarkDownText::new(text.to_string()),
    )))
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}h {:02}m {:02}s", s / 3600, s % 3600 / 60, s % 60)
}

/// A Slack post failed.
#[derive(Debug, thiserror::Error)]
#[error("Slack {target}: {reason}")]
pub struct NotifyError {
    /// Where it was posted (API method URL or the webhook's host; never a secret).
    pub target: String,
    /// What went wrong.
    pub reason: String,
}

enum Target {
    Bot { token: Secret, channel: String },
    Webhook(url::Url),
}

/// A configured Slack poster.
pub struct Notifier {
    client: SlackHyperClient,
    target: Target,
    api_url: String,
    notify_success: bool,
}

impl Notifier {
    /// Build from `[slack]`, reading secrets from the environment or files.
    pub fn new(config: &SlackConfig) -> Result<Notifier> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Config(format!("section [slack]: TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let api_url = config.api_url.trim_end_matches('/').to_string();
        let connector =
            SlackClientHyperConnector::with_connector(https).with_slack_api_url(&api_url);
        let target = match (
            Secret::resolve(
                config.bot_token.as_ref(),
                config.bot_token_file.as_deref(),
                "slack.bot_token",
            )?,
            Secret::resolve(
                config.webhook_url.as_ref(),
                config.webhook_url_file.as_deref(),
                "slack.webhook_url",
            )?,
        ) {
            (Some(token), _) => Target::Bot {
                token,
                channel: config.channel.clone().unwrap_or_default(),
            },
            (None, Some(url)) => {
                Target::Webhook(url::Url::parse(url.expose()).map_err(|e| {
                    Error::Config(format!("key `slack.webhook_url`: not a URL ({e})"))
                })?)
            }
            (None, None) => {
                return Err(Error::Config(
                    "section [slack]: no bot_token or webhook_url".into(),
                ));
            }
        };
        Ok(Notifier {
            client: SlackClient::new(connector),
            target,
            api_url,
            notify_success: config.notify_success,
        })
    }

    /// Whether a notice of `level` is to be sent.
    pub fn wants(&self, level: Level) -> bool {
        level == Level::Failure || self.notify_success
    }

    fn target_name(&self) -> String {
        match &self.target {
            Target::Bot { .. } => format!("{}/chat.postMessage", self.api_url),
            Target::Webhook(u) => format!(
                "incoming webhook on {}",
                u.host_str().unwrap_or("(no host)")
            ),
        }
    }

    /// Post `notice`, retried once ([`SLACK_RETRY`]) when the failure may pass.
    pub async fn send(&self, notice: &Notice) -> std::result::Result<(), NotifyError> {
        let content = SlackMessageContent::new()
            .with_text(notice.text())
            .with_blocks(notice.blocks());
        let target = self.target_name();
        let content = &content;
        SLACK_RETRY
            .run(&target, |_| async move {
                let result = match &self.target {
                    Target::Bot { token, channel } => {
                        let token =
                            SlackApiToken::new(SlackApiTokenValue::new(token.expose().to_string()));
                        let session = self.client.open_session(&token);
                        session
                            .chat_post_message(&SlackApiChatPostMessageRequest::new(
                                SlackChannelId::new(channel.clone()),
                                content.clone(),
                            ))
                            .await
                            .map(|_| ())
                    }
                    Target::Webhook(url) => self
                        .client
                        .post_webhook_message(
                            url,
                            &SlackApiPostWebhookMessageRequest::new(content.clone()),
                        )
                        .await
                        .map(|_| ()),
                };
                result.map_err(Failed)
            })
            .await
            .map_err(|e| NotifyError {
                target,
                reason: e.to_string(),
            })
    }
}

/// One line for a slack-morphism error (no request URL, hence no webhook secret).
fn describe(e: &SlackClientError) -> String {
    match e {
        SlackClientError::ApiError(a) => format!("API error `{}`", a.code),
        SlackClientError::HttpError(h) => format!("HTTP {}", h.status_code),
        SlackClientError::RateLimitError(_) => {
            "still rate limited (HTTP 429) after one retry".into()
        }
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(x) = src {
                s.push_str(&format!(": {x}"));
                src = x.source();
            }
            s.lines().next().unwrap_or_default().to_string()
        }
    }
}

/// Send `notice` if `[slack]` is configured and wants this level. Errors are logged and
/// printed as a warning, never returned: the caller's exit code stays its own.
pub async fn notify(config: &Config, notice: &Notice) {
    let Some(slack) = &config.slack else {
        return;
    };
    let result = match Notifier::new(slack) {
        Ok(n) if !n.wants(notice.level) => return,
        Ok(n) => n.send(notice).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "Slack notification failed");
        eprintln!("warning: Slack notification failed: {e}");
    }
}
