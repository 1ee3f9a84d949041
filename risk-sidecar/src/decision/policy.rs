//! Pure: the model's score, the features and the rules become a decision with reasons.
//!
//! Rules are Common Expression Language over named features, compiled once when the
//! policy file loads. Precedence follows Stripe Radar: block rules, then allow rules
//! (which skip challenge rules and score bands), then challenge rules, then score bands.
//!
//! Fail open or closed when velocity is unavailable? Neither, by fiat: the velocity
//! features are NaN (unknown), a rule that reads an unknown value does not fire, so
//! velocity rules stay silent and the model decides from what it has. The policy states what else to do through
//! the `velocity_available` variable (the shipped policy challenges high amounts).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::common::types::{CelBool as Bool, CelDouble as Double};
use cel::common::value::CowVal;
use cel::context::VariableResolver;
use cel::{Context, Env, Program, Value};
use serde::Deserialize;
use shared::{Decision, FEATURE_NAMES, N_FEATURES, Reason, ReasonCode};

use super::features::FeatureVector;

const VELOCITY_AVAILABLE: &str = "velocity_available";

static FEATURE_INDEX: LazyLock<HashMap<&'static str, usize>> =
    LazyLock::new(|| FEATURE_NAMES.iter().enumerate().map(|(i, n)| (*n, i)).collect());

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file is not valid YAML for a policy: {0}")]
    Syntax(String),
    #[error("rule {rule}: {problem}")]
    Rule { rule: String, problem: String },
    #[error("thresholds must satisfy 0 <= challenge <= block <= 1")]
    Thresholds,
}

/// What the policy decided, before ids and timings are attached.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub decision: Decision,
    pub reasons: Vec<Reason>,
}

pub struct Policy {
    pub version: String,
    /// The policy's own score bands; when absent, the model card's apply.
    bands: Option<Bands>,
    block_rules: Vec<Rule>,
    allow_rules: Vec<Rule>,
    challenge_rules: Vec<Rule>,
    env: Arc<Env>,
}

struct Rule {
    id: String,
    program: Program,
    /// The features the expression reads.
    inputs: Vec<usize>,
    code: ReasonCode,
    message: Template,
}

/// A message with `{feature}` placeholders, split once at load.
struct Template(Vec<Segment>);

enum Segment {
    Text(String),
    Feature(usize),
}

/// Score bands: challenge at or above `challenge`, block at or above `block`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Bands {
    pub challenge: f32,
    pub block: f32,
}

impl Default for Bands {
    /// The defaults when neither the policy nor the model card names bands.
    fn default() -> Bands {
        Bands {
            challenge: 0.5,
            block: 0.9,
        }
    }
}

impl Bands {
    pub fn is_valid(&self) -> bool {
        (0.0..=1.0).contains(&self.challenge) && (self.challenge..=1.0).contains(&self.block)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: String,
    #[serde(default)]
    thresholds: Option<Bands>,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    id: String,
    action: Action,
    when: String,
    code: String,
    message: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Action {
    Block,
    Allow,
    Challenge,
}

/// The variables a rule sees: one CEL double per feature, built per decision without
/// allocating, plus `velocity_available`.
struct Variables {
    values: [Double; N_FEATURES],
    velocity_available: Bool,
}

impl VariableResolver for Variables {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        if name == VELOCITY_AVAILABLE {
            return Some(CowVal::Borrowed(&self.velocity_available));
        }
        FEATURE_INDEX.get(name).map(|i| CowVal::Borrowed(&self.values[*i] as _))
    }
}

// === impl Policy ===

impl Policy {
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = serde_yaml::from_str(text).map_err(|e| PolicyError::Syntax(e.to_string()))?;
        if file.thresholds.is_some_and(|b| !b.is_valid()) {
            return Err(PolicyError::Thresholds);
        }
        let mut policy = Policy {
            version: file.version,
            bands: file.thresholds,
            block_rules: Vec::new(),
            allow_rules: Vec::new(),
            challenge_rules: Vec::new(),
            env: Arc::new(Env::stdlib()),
        };
        for r in file.rules {
            let (action, rule) = policy.compile(r)?;
            match action {
                Action::Block => policy.block_rules.push(rule),
                Action::Allow => policy.allow_rules.push(rule),
                Action::Challenge => policy.challenge_rules.push(rule),
            }
        }
        Ok(policy)
    }

    fn compile(&self, r: RuleFile) -> Result<(Action, Rule), PolicyError> {
        let fail = |problem: String| PolicyError::Rule {
            rule: r.id.clone(),
            problem,
        };
        let program = Program::compile(&r.when).map_err(|e| fail(format!("does not compile: {e}")))?;
        let mut inputs = Vec::new();
        for var in program.references().variables() {
            match FEATURE_INDEX.get(var) {
                Some(i) => inputs.push(*i),
                None if var == VELOCITY_AVAILABLE => {}
                None => return Err(fail(format!("unknown variable {var}"))),
            }
        }
        let code =
            ReasonCode::parse(&r.code).ok_or_else(|| fail(format!("{} is not a documented reason code", r.code)))?;
        let message = Template::parse(&r.message).map_err(fail)?;
        // Evaluate once on known values: a type error shows now, not per request.
        let vars = Variables {
            values: [Double::from(0.0); N_FEATURES],
            velocity_available: Bool::from(true),
        };
        match self.eval(&program, &vars) {
            Ok(Value::Bool(_)) => {}
            Ok(other) => return Err(fail(format!("yields {other:?}, not a boolean"))),
            Err(e) => return Err(fail(format!("fails to evaluate: {e}"))),
        }
        Ok((
            r.action,
            Rule {
                id: r.id,
                program,
                inputs,
                code,
                message,
            },
        ))
    }

    fn eval(&self, program: &Program, vars: &Variables) -> cel::ResolveResult {
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        ctx.set_variable_resolver(vars);
        program.execute(&ctx)
    }

    /// `model_bands` are the model card's thresholds, used unless the policy sets its own.
    pub fn decide(
        &self,
        score: f32,
        features: &FeatureVector,
        velocity_available: bool,
        model_bands: Option<Bands>,
    ) -> Verdict {
        let vars = Variables {
            values: features.0.map(|v| Double::from(f64::from(v))),
            velocity_available: Bool::from(velocity_available),
        };
        let fired = |rules: &[Rule]| -> Vec<Reason> {
            rules
                .iter()
                .filter(|r| self.fires(r, &vars, features))
                .map(|r| r.reason(features))
                .collect()
        };
        let band = score_band(score, self.bands.or(model_bands).unwrap_or_default());

        let mut reasons = fired(&self.block_rules);
        if !reasons.is_empty() {
            reasons.extend(band.map(|(_, r)| r));
            return Verdict {
                decision: Decision::Block,
                reasons,
            };
        }
        let allowed = fired(&self.allow_rules);
        if !allowed.is_empty() {
            return Verdict {
                decision: Decision::Allow,
                reasons: allowed,
            };
        }
        let mut reasons = fired(&self.challenge_rules);
        match band {
            Some((Decision::Block, model)) => {
                reasons.insert(0, model);
                Verdict {
                    decision: Decision::Block,
                    reasons,
                }
            }
            Some((_, model)) => {
                reasons.push(model);
                Verdict {
                    decision: Decision::Challenge,
                    reasons,
                }
            }
            None if !reasons.is_empty() => Verdict {
                decision: Decision::Challenge,
                reasons,
            },
            None => Verdict {
                decision: Decision::Allow,
                reasons,
            },
        }
    }

    /// CEL refuses to compare NaN, so a rule reading an unknown value fails to evaluate:
    /// that is the expected "does not fire". Any other failure does not fire either and
    /// is counted: a policy must not take the payment flow down.
    fn fires(&self, rule: &Rule, vars: &Variables, features: &FeatureVector) -> bool {
        match self.eval(&rule.program, vars) {
            Ok(Value::Bool(b)) => b,
            _ if rule.inputs.iter().any(|i| features.0[*i].is_nan()) => false,
            _ => {
                crate::metrics::policy_rule_error();
                tracing::warn!(rule = %rule.id, "Policy rule failed to evaluate.");
                false
            }
        }
    }
}

fn score_band(score: f32, bands: Bands) -> Option<(Decision, Reason)> {
    let (decision, code, threshold, name) = if score >= bands.block {
        (Decision::Block, ReasonCode::ModelVeryHighRisk, bands.block, "block")
    } else if score >= bands.challenge {
        (
            Decision::Challenge,
            ReasonCode::ModelHighRisk,
            bands.challenge,
            "challenge",
        )
    } else {
        return None;
    };
    let message = format!("model score {score:.2} is at or above the {name} threshold {threshold:.2}");
    Some((
        decision,
        Reason {
            code: code.as_str().to_owned(),
            message,
            source: code.source(),
        },
    ))
}

// === impl Rule ===

impl Rule {
    fn reason(&self, features: &FeatureVector) -> Reason {
        Reason {
            code: self.code.as_str().to_owned(),
            message: self.message.render(features),
            source: self.code.source(),
        }
    }
}

// === impl Template ===

impl Template {
    fn parse(text: &str) -> Result<Template, String> {
        let mut segments = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').ok_or("message has an unclosed {")? + open;
            let name = &rest[open + 1..close];
            let index = *FEATURE_INDEX
                .get(name)
                .ok_or_else(|| format!("message names unknown feature {name}"))?;
            segments.push(Segment::Text(rest[..open].to_owned()));
            segments.push(Segment::Feature(index));
            rest = &rest[close + 1..];
        }
        segments.push(Segment::Text(rest.to_owned()));
        Ok(Template(segments))
    }

    fn render(&self, features: &FeatureVector) -> String {
        let mut out = String::new();
        for s in &self.0 {
            match s {
                Segment::Text(t) => out.push_str(t),
                Segment::Feature(i) => out.push_str(&super::features::display_value(features.0[*i])),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
