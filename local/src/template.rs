//! Reads the wiring out of `template.yaml`: which function serves which
//! route, which rule feeds which function, which function reads the stream.

use crate::event_pattern::{EventPattern, PatternError};
use serde_yaml::Value;
use std::path::Path;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub method: String,
    pub path: String,
}

impl Route {
    /// API Gateway's route key, e.g. `GET /orders/{orderId}`.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// The template's event name, for logs and dead letters.
    pub name: String,
    pub pattern: EventPattern,
    /// The pattern as written, for tests and diagnostics.
    pub pattern_json: serde_json::Value,
    pub max_retries: u32,
}

#[derive(Debug, Clone)]
pub struct Function {
    pub logical_id: String,
    /// The function's name in the registry: its `FUNCTION` variable.
    pub name: String,
    /// The binary it ships, from `Metadata.BuildProperties.Binary`.
    pub binary: String,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    pub reads_stream: bool,
    /// Schedule expressions (`rate(5 minutes)`) of its `Schedule` events.
    pub schedules: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Wiring {
    pub functions: Vec<Function>,
}

#[derive(Debug, Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("template.yaml is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("{function}: {problem}")]
    Function { function: String, problem: String },
    #[error("{function}: bad event pattern: {source}")]
    Pattern { function: String, source: PatternError },
}

impl Wiring {
    pub fn load(path: &Path) -> Result<Wiring, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Wiring, TemplateError> {
        let template: Value = serde_yaml::from_str(text)?;
        let mut functions = Vec::new();
        let Some(resources) = template.get("Resources").and_then(Value::as_mapping) else {
            return Ok(Wiring { functions });
        };
        for (logical_id, resource) in resources {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let logical_id = logical_id.as_str().unwrap_or_default().to_owned();
            functions.push(function(&logical_id, resource)?);
        }
        Ok(Wiring { functions })
    }
}

fn function(logical_id: &str, resource: &Value) -> Result<Function, TemplateError> {
    let problem = |problem: &str| TemplateError::Function { function: logical_id.to_owned(), problem: problem.to_owned() };
    let binary = resource
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
        .and_then(Value::as_str)
        .ok_or_else(|| problem("Metadata.BuildProperties.Binary is missing"))?
        .to_owned();
    let name = resource
        .get("Properties")
        .and_then(|p| p.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(|v| v.get("FUNCTION"))
        .and_then(Value::as_str)
        .ok_or_else(|| problem("Properties.Environment.Variables.FUNCTION is missing"))?
        .to_owned();
    let mut function =
        Function { logical_id: logical_id.to_owned(), name, binary, routes: vec![], rules: vec![], reads_stream: false, schedules: vec![] };
    let events = resource.get("Properties").and_then(|p| p.get("Events")).and_then(Value::as_mapping);
    for (name, event) in events.into_iter().flatten() {
        let name = name.as_str().unwrap_or_default();
        let properties = event.get("Properties");
        let text = |field: &str| properties.and_then(|p| p.get(field)).and_then(Value::as_str).map(str::to_owned);
        match event.get("Type").and_then(Value::as_str) {
            Some("HttpApi") => function.routes.push(Route {
                method: text("Method").ok_or_else(|| problem("an HttpApi event needs Method"))?.to_ascii_uppercase(),
                path: text("Path").ok_or_else(|| problem("an HttpApi event needs Path"))?,
            }),
            Some("EventBridgeRule") => {
                let pattern = properties.and_then(|p| p.get("Pattern")).ok_or_else(|| problem("an EventBridgeRule needs Pattern"))?;
                let pattern_json: serde_json::Value =
                    serde_json::to_value(pattern).map_err(|e| problem(&format!("pattern is not JSON: {e}")))?;
                let compiled = EventPattern::parse(&pattern_json)
                    .map_err(|source| TemplateError::Pattern { function: logical_id.to_owned(), source })?;
                let max_retries = properties
                    .and_then(|p| p.get("RetryPolicy"))
                    .and_then(|r| r.get("MaximumRetryAttempts"))
                    .and_then(Value::as_u64)
                    .unwrap_or(185) as u32; // EventBridge's default
                function.rules.push(Rule { name: name.to_owned(), pattern: compiled, pattern_json, max_retries });
            }
            Some("DynamoDB") => function.reads_stream = true,
            Some("Schedule") => function.schedules.push(text("Schedule").ok_or_else(|| problem("a Schedule event needs Schedule"))?),
            _ => {}
        }
    }
    Ok(function)
}

/// Wiring for unit tests: one function per (name, pattern), each the target
/// of an EventBridge rule with that pattern (YAML flow style).
#[cfg(test)]
pub(crate) fn rule_targets(functions: &[(&str, &str)]) -> Wiring {
    let function = |(name, pattern): &(&str, &str)| {
        format!(
            "
  {name}Function:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: bootstrap
    Properties:
      Environment:
        Variables:
          FUNCTION: {name}
      Events:
        Orders:
          Type: EventBridgeRule
          Properties:
            Pattern: {pattern}
"
        )
    };
    let template: String = functions.iter().map(function).collect();
    Wiring::parse(&format!("Resources:{template}")).expect("the test template parses")
}
