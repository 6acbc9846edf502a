//! What each DynamoDB call consumed: an SDK interceptor asks for
//! `ReturnConsumedCapacity = INDEXES` on every data call the adapters make
//! (the adapters' code is untouched) and adds up the answer per function and
//! operation. DynamoDB Local reports single-item calls as DynamoDB does (1
//! WRU per KB written, index writes included; 1 RRU per 4 KB read
//! consistently), but not transactions: it reports 2 units for one small
//! put, for two and for three alike. So `TransactWriteItems` is counted from
//! the request by DynamoDB's documented rule instead: 2 WRU per KB of each
//! item put, rounded up per item, and 2 per condition check (the checked
//! item is an event, under 1 KB here: `largest_item` shows it).

use aws_sdk_dynamodb::config::interceptors::{AfterDeserializationInterceptorContextRef, BeforeSerializationInterceptorContextMut};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsInput, TransactWriteItemsOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ConsumedCapacity, ReturnConsumedCapacity};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Capacity consumed by one (function, operation): calls, read units, write
/// units, of which on a secondary index.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Units {
    pub calls: u64,
    pub read: f64,
    pub write: f64,
    pub index_write: f64,
}

impl std::ops::AddAssign for Units {
    fn add_assign(&mut self, other: Units) {
        self.calls += other.calls;
        self.read += other.read;
        self.write += other.write;
        self.index_write += other.index_write;
    }
}

#[derive(Debug, Default)]
struct Books {
    /// The function being invoked: the driver runs one at a time.
    current: String,
    by_call: BTreeMap<(String, &'static str), Units>,
    /// Calls DynamoDB refused (a failed condition still costs a write,
    /// which DynamoDB does not report): a lifecycle should have none.
    failed: u64,
    /// Calls of an operation this meter does not know: it cannot count them.
    unknown: u64,
    /// The write units of the transaction in flight, from its request.
    transaction: Option<f64>,
    /// What DynamoDB Local reported for the transactions, for comparison.
    local_transaction_units: f64,
    /// The largest item written, in bytes as DynamoDB sizes it.
    largest_item: usize,
}

#[derive(Debug, Default)]
pub struct Meter(Mutex<Books>);

impl Meter {
    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn set_function(&self, function: &str) {
        function.clone_into(&mut self.books().current);
    }

    /// Everything counted so far, and a fresh start.
    pub fn take(&self) -> Taken {
        let mut books = self.books();
        let taken = Taken {
            by_call: std::mem::take(&mut books.by_call),
            failed: books.failed,
            unknown: books.unknown,
            local_transaction_units: books.local_transaction_units,
            largest_item: books.largest_item,
        };
        (books.failed, books.unknown, books.local_transaction_units, books.largest_item) = (0, 0, 0.0, 0);
        taken
    }

    fn record(&self, operation: &'static str, writes: bool, consumed: &[ConsumedCapacity]) {
        let mut books = self.books();
        let computed = books.transaction.take();
        let key = (books.current.clone(), operation);
        if let Some(computed) = computed {
            books.local_transaction_units += consumed.iter().filter_map(|c| c.capacity_units).sum::<f64>();
            let units = books.by_call.entry(key).or_default();
            units.calls += 1;
            units.write += computed;
            return;
        }
        let units = books.by_call.entry(key).or_default();
        units.calls += 1;
        for capacity in consumed {
            let total = capacity.capacity_units.unwrap_or_default();
            let index: f64 = capacity.global_secondary_indexes.iter().flatten().map(|(_, c)| c.capacity_units.unwrap_or_default()).sum();
            if writes {
                units.write += total;
                units.index_write += index;
            } else {
                units.read += total;
            }
        }
    }
}

pub struct Taken {
    pub by_call: BTreeMap<(String, &'static str), Units>,
    pub failed: u64,
    pub unknown: u64,
    pub local_transaction_units: f64,
    pub largest_item: usize,
}

impl Taken {
    pub fn total(&self) -> Units {
        let mut total = Units::default();
        for units in self.by_call.values() {
            total += *units;
        }
        total
    }
}

#[derive(Debug)]
pub struct CapacityInterceptor(pub Arc<Meter>);

impl Intercept for CapacityInterceptor {
    fn name(&self) -> &'static str {
        "ConsumedCapacityMeter"
    }

    fn modify_before_serialization(
        &self,
        context: &mut BeforeSerializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input_mut();
        let ask = Some(ReturnConsumedCapacity::Indexes);
        if let Some(input) = input.downcast_mut::<PutItemInput>() {
            input.return_consumed_capacity = ask;
            let size = input.item.as_ref().map_or(0, item_size);
            let mut books = self.0.books();
            books.largest_item = books.largest_item.max(size);
        } else if let Some(input) = input.downcast_mut::<GetItemInput>() {
            input.return_consumed_capacity = ask;
        } else if let Some(input) = input.downcast_mut::<QueryInput>() {
            input.return_consumed_capacity = ask;
        } else if let Some(input) = input.downcast_mut::<ScanInput>() {
            input.return_consumed_capacity = ask;
        } else if let Some(input) = input.downcast_mut::<TransactWriteItemsInput>() {
            input.return_consumed_capacity = ask;
            let mut units = 0.0;
            let mut books = self.0.books();
            for action in input.transact_items.iter().flatten() {
                let size = action.put.as_ref().map_or(0, |put| item_size(&put.item));
                books.largest_item = books.largest_item.max(size);
                // Updates and deletes are sized like the largest item seen.
                units += 2.0 * size.max(1).div_ceil(1024) as f64;
            }
            books.transaction = Some(units);
        } else if let Some(input) = input.downcast_mut::<UpdateItemInput>() {
            input.return_consumed_capacity = ask;
        } else if let Some(input) = input.downcast_mut::<DeleteItemInput>() {
            input.return_consumed_capacity = ask;
        }
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let output = match context.output_or_error() {
            Ok(output) => output,
            Err(_) => {
                self.0.books().failed += 1;
                return Ok(());
            }
        };
        let one = |capacity: &Option<ConsumedCapacity>| capacity.iter().cloned().collect::<Vec<_>>();
        let meter = &self.0;
        if let Some(output) = output.downcast_ref::<PutItemOutput>() {
            meter.record("PutItem", true, &one(&output.consumed_capacity));
        } else if let Some(output) = output.downcast_ref::<GetItemOutput>() {
            meter.record("GetItem", false, &one(&output.consumed_capacity));
        } else if let Some(output) = output.downcast_ref::<QueryOutput>() {
            meter.record("Query", false, &one(&output.consumed_capacity));
        } else if let Some(output) = output.downcast_ref::<ScanOutput>() {
            meter.record("Scan", false, &one(&output.consumed_capacity));
        } else if let Some(output) = output.downcast_ref::<TransactWriteItemsOutput>() {
            meter.record("TransactWriteItems", true, output.consumed_capacity.as_deref().unwrap_or_default());
        } else if let Some(output) = output.downcast_ref::<UpdateItemOutput>() {
            meter.record("UpdateItem", true, &one(&output.consumed_capacity));
        } else if let Some(output) = output.downcast_ref::<DeleteItemOutput>() {
            meter.record("DeleteItem", true, &one(&output.consumed_capacity));
        } else {
            self.0.books().unknown += 1;
        }
        Ok(())
    }
}

/// An item's size as DynamoDB bills it: each attribute's name plus value.
fn item_size(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        // About one byte per two significant digits, plus one.
        AttributeValue::N(number) => number.trim_start_matches(['-', '0']).replace('.', "").len().div_ceil(2) + 1,
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(texts) => texts.iter().map(String::len).sum(),
        AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => 3 + map.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
        _ => 0,
    }
}
