//! Starts `ai-ide lsp` for Zed. The binary, its arguments, the
//! initialization options and the `aiIde` settings come from the user's
//! settings.json (`lsp.ai-ide`); without them it runs `ai-ide lsp --no-http`
//! from PATH.

use zed_extension_api::{self as zed, serde_json::Value, settings::LspSettings, Result};

const SERVER: &str = "ai-ide";

struct AiIde;

fn user_settings(worktree: &zed::Worktree) -> Option<LspSettings> {
    LspSettings::for_worktree(SERVER, worktree).ok()
}

impl zed::Extension for AiIde {
    fn new() -> Self {
        AiIde
    }

    fn language_server_command(
        &mut self,
        _language_server_id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<zed::Command> {
        let binary = user_settings(worktree).and_then(|settings| settings.binary);
        let command = binary
            .as_ref()
            .and_then(|binary| binary.path.clone())
            .or_else(|| worktree.which(SERVER))
            .ok_or_else(|| "ai-ide not found on PATH: set lsp.ai-ide.binary.path".to_string())?;
        let args = binary
            .and_then(|binary| binary.arguments)
            .unwrap_or_else(|| vec!["lsp".to_string(), "--no-http".to_string()]);
        Ok(zed::Command {
            command,
            args,
            env: Default::default(),
        })
    }

    fn language_server_initialization_options(
        &mut self,
        _language_server_id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<Value>> {
        Ok(user_settings(worktree).and_then(|settings| settings.initialization_options))
    }

    fn language_server_workspace_configuration(
        &mut self,
        _language_server_id: &zed::LanguageServerId,
        worktree: &zed::Worktree,
    ) -> Result<Option<Value>> {
        Ok(user_settings(worktree).and_then(|settings| settings.settings))
    }
}

zed::register_extension!(AiIde);
