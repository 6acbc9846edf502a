//! Delivery: once cooking starts, the delivery is offered to the riders of the
//! order's region; one rider picks it up when the food is ready and either
//! delivers it or reports an accident.
//!
//! The delivery opens from the order's cooking events, which policies forward
//! asynchronously and possibly out of order, so both `Open` and `MarkFoodReady`
//! carry everything needed to create it and repeat deliveries are no-ops.
//! Rider actions are user commands: a refused one is an error, never silent.

use crate::aggregate::{Aggregate, DomainEvent};
use crate::error::{DomainError, ensure};
use crate::ids::{CustomerId, Region, RiderId, StoreId};
use serde::{Deserialize, Serialize};

pub const MAX_DESCRIPTION_LEN: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryDetails {
    pub customer_id: CustomerId,
    pub store_id: StoreId,
    pub region: Region,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "riderId")]
pub enum DeliveryState {
    Open,
    PickedUp(RiderId),
    Delivered(RiderId),
    Failed(RiderId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenedDelivery {
    pub details: DeliveryDetails,
    pub food_ready: bool,
    pub state: DeliveryState,
}

/// The delivery aggregate, identified by its order's id. `None` until opened.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Delivery {
    pub opened: Option<OpenedDelivery>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryCommand {
    Open(DeliveryDetails),
    MarkFoodReady(DeliveryDetails),
    Pick { rider_id: RiderId },
    Complete { rider_id: RiderId },
    ReportAccident { rider_id: RiderId, description: String },
}

/// Every delivery event carries the details, so the riders' board can file
/// any of them under its region whatever order they arrive in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "eventType", content = "data")]
pub enum DeliveryEvent {
    #[serde(rename_all = "camelCase")]
    DeliveryOpened { details: DeliveryDetails },
    #[serde(rename_all = "camelCase")]
    FoodReady { details: DeliveryDetails },
    #[serde(rename_all = "camelCase")]
    DeliveryPicked { details: DeliveryDetails, rider_id: RiderId },
    #[serde(rename_all = "camelCase")]
    DeliveryCompleted { details: DeliveryDetails, rider_id: RiderId },
    #[serde(rename_all = "camelCase")]
    AccidentReported { details: DeliveryDetails, rider_id: RiderId, description: String },
}

impl DomainEvent for DeliveryEvent {}

impl DeliveryEvent {
    pub fn details(&self) -> &DeliveryDetails {
        match self {
            Self::DeliveryOpened { details }
            | Self::FoodReady { details }
            | Self::DeliveryPicked { details, .. }
            | Self::DeliveryCompleted { details, .. }
            | Self::AccidentReported { details, .. } => details,
        }
    }
}

impl Aggregate for Delivery {
    const TYPE: &'static str = "Delivery";
    type Command = DeliveryCommand;
    type Event = DeliveryEvent;

    fn decide(&self, command: &DeliveryCommand) -> Result<Vec<DeliveryEvent>, DomainError> {
        let Some(delivery) = &self.opened else {
            return match command {
                DeliveryCommand::Open(details) => Ok(vec![DeliveryEvent::DeliveryOpened { details: details.clone() }]),
                DeliveryCommand::MarkFoodReady(details) => Ok(vec![
                    DeliveryEvent::DeliveryOpened { details: details.clone() },
                    DeliveryEvent::FoodReady { details: details.clone() },
                ]),
                _ => Err(DomainError::not_found("no delivery for this order yet")),
            };
        };
        let details = delivery.details.clone();
        match (command, &delivery.state) {
            (DeliveryCommand::Open(_), _) => Ok(vec![]),
            (DeliveryCommand::MarkFoodReady(_), _) if delivery.food_ready => Ok(vec![]),
            (DeliveryCommand::MarkFoodReady(_), _) => Ok(vec![DeliveryEvent::FoodReady { details }]),
            (DeliveryCommand::Pick { rider_id }, DeliveryState::Open) => {
                if !delivery.food_ready {
                    return Err(DomainError::conflict("the food is still cooking: pick it up once it is ready"));
                }
                Ok(vec![DeliveryEvent::DeliveryPicked { details, rider_id: rider_id.clone() }])
            }
            (DeliveryCommand::Pick { rider_id }, DeliveryState::PickedUp(picker)) if picker == rider_id => {
                Err(DomainError::conflict("you have already picked up this delivery"))
            }
            (DeliveryCommand::Pick { .. }, DeliveryState::PickedUp(_)) => {
                Err(DomainError::conflict("another rider has taken this delivery"))
            }
            (DeliveryCommand::Pick { .. }, _) => Err(DomainError::conflict("the delivery is already finished")),
            (DeliveryCommand::Complete { rider_id }, DeliveryState::PickedUp(picker)) => {
                ensure_rider(picker, rider_id)?;
                Ok(vec![DeliveryEvent::DeliveryCompleted { details, rider_id: rider_id.clone() }])
            }
            (DeliveryCommand::ReportAccident { rider_id, description }, DeliveryState::PickedUp(picker)) => {
                ensure_rider(picker, rider_id)?;
                let description = description.trim();
                ensure(!description.is_empty(), || "describe what happened".into())?;
                ensure(description.chars().count() <= MAX_DESCRIPTION_LEN, || {
                    format!("description must be at most {MAX_DESCRIPTION_LEN} characters")
                })?;
                Ok(vec![DeliveryEvent::AccidentReported { details, rider_id: rider_id.clone(), description: description.to_owned() }])
            }
            (DeliveryCommand::Complete { .. } | DeliveryCommand::ReportAccident { .. }, DeliveryState::Open) => {
                Err(DomainError::conflict("the delivery has not been picked up yet"))
            }
            (DeliveryCommand::Complete { .. } | DeliveryCommand::ReportAccident { .. }, _) => {
                Err(DomainError::conflict("the delivery is already finished"))
            }
        }
    }

    fn apply(&mut self, event: &DeliveryEvent) {
        let delivery = self.opened.get_or_insert_with(|| OpenedDelivery {
            details: event.details().clone(),
            food_ready: false,
            state: DeliveryState::Open,
        });
        match event {
            DeliveryEvent::DeliveryOpened { .. } => {}
            DeliveryEvent::FoodReady { .. } => delivery.food_ready = true,
            DeliveryEvent::DeliveryPicked { rider_id, .. } => delivery.state = DeliveryState::PickedUp(rider_id.clone()),
            DeliveryEvent::DeliveryCompleted { rider_id, .. } => delivery.state = DeliveryState::Delivered(rider_id.clone()),
            DeliveryEvent::AccidentReported { rider_id, .. } => delivery.state = DeliveryState::Failed(rider_id.clone()),
        }
    }
}

fn ensure_rider(picker: &RiderId, rider_id: &RiderId) -> Result<(), DomainError> {
    if picker == rider_id { Ok(()) } else { Err(DomainError::forbidden("this delivery belongs to another rider")) }
}
