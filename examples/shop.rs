//! A day at a small shop, on one ledger and one manual clock: deliveries
//! into two locations, orders held at checkout and paid (committed as one
//! unit across their SKUs), a cancelled cart, a cart abandoned until its
//! hold lapses, a backorder filled by the afternoon delivery, a gift box
//! (a kit of milk and bread), milk that expires and is written off, a
//! return restocked into its lot, and low-stock notices with hysteresis.
//! Prints the day's events and the closing stock report; exits with status
//! 1 if a check fails (audit, conservation, or what the day should have
//! left).
//!
//! ```text
//! cargo run --release --example shop
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use stockroom::{
    AllocateRequest, AllocationPolicy, Clock, Delivery, Event, KitComponent, Ledger, LocationId, LotId, LowStock,
    ManualClock, NewLot, Notice, OrderLine, OrderRequest, ReturnReason, ReturnRequest, ReturnSource, SkuId,
    Subscription, Timestamp,
};

const MILK: SkuId = SkuId(1);
const BREAD: SkuId = SkuId(2);
const GIFT_BOX: SkuId = SkuId(10);
const STORE: LocationId = LocationId(1);
const BACK_ROOM: LocationId = LocationId(2);
const HOUR: u64 = 3_600_000;

fn at(hours: u64, minutes: u64) -> Timestamp {
    Timestamp(hours * HOUR + minutes * 60_000)
}

/// The shop's log: every notice the ledger sent, and what the clerk did.
struct Log {
    events: Subscription<Event>,
    failures: Vec<String>,
}

impl Log {
    fn say(&mut self, clock: &ManualClock, what: impl AsRef<str>) {
        self.drain();
        let now = clock.now().0;
        println!("{:02}:{:02}  {}", now / HOUR, now % HOUR / 60_000, what.as_ref());
    }

    fn drain(&mut self) {
        for delivery in self.events.try_iter() {
            let Delivery::Event(event) = delivery else { continue };
            for notice in &event.notices {
                let line = match notice {
                    Notice::LowStock { available, threshold } => {
                        format!("low stock: {} at {available} (threshold {threshold})", event.sku)
                    }
                    Notice::SoldOut => format!("sold out: {}", event.sku),
                    Notice::BackInStock { available } => format!("back in stock: {} ({available})", event.sku),
                    Notice::LotExpired { lot } => format!("expired: {lot} of {}", event.sku),
                    Notice::BackorderFilled { reservation, outstanding, .. } => {
                        format!("backorder {reservation} filled, {outstanding} still outstanding")
                    }
                    other => format!("{other:?}"),
                };
                println!("        notice: {line}");
            }
        }
    }

    fn check(&mut self, ok: bool, what: &str) {
        if !ok {
            self.failures.push(what.to_owned());
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(failures) if failures.is_empty() => ExitCode::SUCCESS,
        Ok(failures) => {
            for failure in failures {
                eprintln!("check failed: {failure}");
            }
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("the day stopped: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let clock = Arc::new(ManualClock::new(at(8, 0)));
    let ledger = Ledger::builder().clock(clock.clone()).events(true).build()?;
    let mut log = Log { events: ledger.subscribe(4_096)?, failures: Vec::new() };

    // 08:00: the catalog and the morning delivery.
    ledger.define_sku(MILK, AllocationPolicy::Fefo)?;
    ledger.define_sku(BREAD, AllocationPolicy::Fifo)?;
    ledger.define_kit(GIFT_BOX, &[KitComponent::new(MILK, 1), KitComponent::new(BREAD, 1)])?;
    ledger.receive(MILK, NewLot::new(LotId(1), 12).expires_at(at(13, 0)).at(STORE))?;
    ledger.receive(MILK, NewLot::new(LotId(2), 24).expires_at(at(24 * 5, 0)).at(BACK_ROOM))?;
    ledger.receive(BREAD, NewLot::new(LotId(1), 20).at(STORE))?;
    ledger.set_low_stock_rule(BREAD, Some(LowStock::new(5).rearm_margin(5)))?;
    log.say(&clock, "open: 36 milk (12 expire at 13:00), 20 bread; bread is low at 5, told again only above 10");

    // 09:00: a customer pays for milk and bread: one order, one commit.
    clock.set(at(9, 0));
    let paid = ledger.allocate_order(
        &OrderRequest::new(vec![OrderLine::new(MILK, 2), OrderLine::new(BREAD, 3)])
            .hold_for(Duration::from_secs(15 * 60))
            .tag(1001),
    )?;
    clock.set(at(9, 4));
    ledger.commit_order(paid.order)?;
    log.say(&clock, format!("{} paid: 2 milk and 3 bread committed together", paid.order));

    // 09:30: a cart is cancelled; another is abandoned and lapses.
    clock.set(at(9, 30));
    let cancelled = ledger.allocate_order(&OrderRequest::new(vec![OrderLine::new(BREAD, 4)]).tag(1002))?;
    ledger.release_order(cancelled.order)?;
    let abandoned = ledger.allocate_order(
        &OrderRequest::new(vec![OrderLine::new(MILK, 5), OrderLine::new(BREAD, 2)])
            .hold_for(Duration::from_secs(10 * 60))
            .tag(1003),
    )?;
    log.say(&clock, format!("{} cancelled; {} held for 10 minutes", cancelled.order, abandoned.order));
    clock.set(at(9, 45));
    let late = ledger.commit_order(abandoned.order);
    log.check(late.is_err(), "an order past its deadline cannot be committed");
    log.say(
        &clock,
        format!("{} came back too late: {}", abandoned.order, late.err().map(|e| e.to_string()).unwrap_or_default()),
    );

    // 10:00: the lunch rush takes bread down to the threshold, then a
    // café orders 25 loaves it is happy to wait for.
    clock.set(at(10, 0));
    for _ in 0..3 {
        ledger.take(&AllocateRequest::new(BREAD, 4))?;
    }
    log.say(&clock, "rush: 12 bread sold over the counter");
    ledger.take(&AllocateRequest::new(BREAD, 1))?;
    ledger.adjust(BREAD, LotId(1), 1, stockroom::AdjustmentReason::Recount)?;
    ledger.take(&AllocateRequest::new(BREAD, 1))?;
    log.say(&clock, "one more sold, one found on recount, one more sold: no second notice (not above 10 yet)");
    let cafe = ledger.allocate(&AllocateRequest::new(BREAD, 25).backordered().tag(2001))?;
    log.say(
        &clock,
        format!("café backorder {}: {} held now, {} to wait for", cafe.reservation, cafe.quantity(), cafe.backordered),
    );

    // 11:00: a gift box, from whatever milk and bread there is.
    clock.set(at(11, 0));
    let boxes_before = ledger.kit(GIFT_BOX)?.available;
    log.say(&clock, format!("gift boxes available: {boxes_before} (bread is all promised to the café)"));

    // 12:00: the afternoon bread delivery fills the café first.
    clock.set(at(12, 0));
    ledger.receive(BREAD, NewLot::new(LotId(2), 40).at(BACK_ROOM))?;
    log.say(&clock, "delivery: 40 bread into the back room");
    ledger.commit(cafe.reservation, None)?;
    log.say(&clock, "café's 25 loaves committed");
    let gift = ledger.allocate_order(&OrderRequest::new(vec![OrderLine::new(GIFT_BOX, 2)]).tag(3001))?;
    ledger.commit_order(gift.order)?;
    log.say(&clock, format!("{} paid: 2 gift boxes (2 milk, 2 bread)", gift.order));

    // 13:05: the morning milk expired; the shop writes it off.
    clock.set(at(13, 5));
    let report = ledger.write_off_expired(clock.now())?;
    let written: u64 = report.swept.iter().flat_map(|s| s.written_off.iter()).map(|l| l.quantity.get()).sum();
    log.say(&clock, format!("expired milk written off: {written} units"));

    // 15:00: the 09:00 customer brings one milk back, unopened.
    clock.set(at(15, 0));
    let milk_lot = paid.allocations.iter().find(|a| a.reservation.sku == MILK).map(|a| a.lines[0].lot);
    let milk_lot = milk_lot.ok_or("the paid order had milk")?;
    let back =
        ReturnRequest::new(MILK, milk_lot, 1).reason(ReturnReason::Restocked).from(ReturnSource::Order(paid.order));
    let returned = ledger.return_units(&back);
    match &returned {
        Ok(done) => log.say(&clock, format!("return: {done}")),
        // Its lot (the morning milk) has expired: it goes into a new lot.
        Err(error) => {
            log.say(&clock, format!("return refused into {milk_lot} ({error}); into a new lot instead"));
            let fresh = NewLot::new(LotId(3), 1).expires_at(at(24 * 2, 0)).at(STORE);
            let done = ledger.return_units(&back.clone().into_new_lot(fresh))?;
            log.say(&clock, format!("return: {done}"));
        }
    }
    let too_many = ReturnRequest::new(MILK, LotId(2), 1_000).from(ReturnSource::Order(paid.order));
    log.check(ledger.return_units(&too_many).is_err(), "more cannot come back than left");

    // Closing: the stock report.
    clock.set(at(20, 0));
    log.say(&clock, "closing");
    println!();
    println!(
        "{:<6} {:>8} {:>9} {:>5} {:>9} {:>11} {:>8} {:>8}",
        "sku", "received", "available", "held", "committed", "written off", "returned", "expired"
    );
    for sku in [MILK, BREAD] {
        let totals = ledger.snapshot(sku)?.totals();
        println!(
            "{:<6} {:>8} {:>9} {:>5} {:>9} {:>11} {:>8} {:>8}",
            sku.to_string(),
            totals.received,
            totals.available,
            totals.held,
            totals.committed,
            totals.written_off,
            totals.returned,
            totals.expired
        );
        for stock in ledger.available_by_location(sku, Duration::ZERO)? {
            let place = stock.location.map_or("nowhere".to_owned(), |l| l.to_string());
            println!("         at {place}: {} available", stock.available);
        }
    }
    println!("gift boxes available: {}", ledger.kit(GIFT_BOX)?.available);

    let milk = ledger.snapshot(MILK)?.totals();
    let bread = ledger.snapshot(BREAD)?.totals();
    log.check(ledger.audit().is_clean(), "audit clean");
    log.check(milk.held.is_zero() && bread.held.is_zero(), "nothing held at closing");
    log.check(bread.committed.get() == 3 + 12 + 2 + 25 + 2, "bread committed: paid 3, counter 14, café 25, boxes 2");
    log.check(milk.written_off.get() == written && written > 0, "the expired milk left the books");
    log.check(
        milk.received.get() + milk.returned.get()
            == milk.available.get() + milk.committed.get() + milk.written_off.get() + milk.expired.get(),
        "milk conserved: received + returned = available + committed + written off + expired",
    );
    println!("\n{}", if log.failures.is_empty() { "every check held" } else { "SOME CHECKS FAILED" });
    Ok(log.failures)
}
