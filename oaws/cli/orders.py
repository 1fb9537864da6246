"""``oaws sim order`` and ``oaws sim cancel``: orders placed on the running simulated
market, whose updates ``oaws tail --orders`` (or any OpenAlgo client) receives."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import orjson
import typer

from oaws.cli.common import BusOpt, UserError, command
from oaws.format import order_line


def find_bus() -> str:
    """The bus of the running server when ``--bus`` is not given: the background server's
    (its state file says), else the one private bus of a server of this state directory
    (``oaws serve`` in another terminal), else the shared default a ``--role feed`` binds."""
    from oaws import background
    from oaws.server import private_bus
    from oaws.server.settings import DEFAULT_BUS

    state = background.read_state()
    if state is not None and state.alive and not state.corrupt and state.info.get("bus"):
        return str(state.info["bus"])
    found = private_bus.live()
    if len(found) > 1:
        raise UserError(f"{len(found)} oaws servers are running here ({', '.join(found)}); say which with --bus")
    return found[0] if found else DEFAULT_BUS


def _send(bus: str | None, request: Any, json: bool) -> None:
    from oaws import brokers
    from oaws.server.bus import BusError
    from oaws.server.order_request import send_order

    bus = bus or find_bus()
    try:
        answer, updates = send_order(bus, request, list(brokers.brokers()))
    except BusError as exc:
        raise UserError(str(exc)) from None
    if answer.get("status") != "success":
        raise UserError(str(answer.get("message", "the feed refused the order")))
    for update in updates:
        typer.echo(orjson.dumps(update).decode() if json else order_line(update))
    if not updates:
        typer.echo(orjson.dumps(answer).decode() if json else f"order {answer.get('orderid')} sent")


JsonOpt = Annotated[bool, typer.Option("--json", help="The order's updates as OpenAlgo's messages, one a line.")]


def register(app: typer.Typer) -> None:
    @command(app, "order")
    def order(
        action: Annotated[str, typer.Argument(help="BUY or SELL.", show_default=False)],
        instrument: Annotated[str, typer.Argument(help="SYMBOL:EXCHANGE, e.g. RELIANCE:NSE.", show_default=False)],
        quantity: Annotated[int, typer.Argument(help="How many shares or lots.", show_default=False)],
        price: Annotated[
            float | None,
            typer.Option("--price", help="A limit price (without it, a market order).", show_default=False),
        ] = None,
        product: Annotated[str, typer.Option("--product", help="MIS, CNC or NRML.")] = "MIS",
        bus: BusOpt = None,
        json: JsonOpt = False,
    ) -> None:
        """Place an order on the simulated market that `oaws serve` runs; it fills at the sim's price."""
        from oaws.instruments import parse
        from oaws.protocol.orders import OrderRequest, OrderRequestError

        body = {
            "nonce": uuid.uuid4().hex,
            "action": action,
            "symbol": (i := parse(instrument)).symbol,
            "exchange": i.exchange,
            "quantity": quantity,
            "price": price,
            "product": product,
        }
        try:
            request = OrderRequest.parse(body)
        except OrderRequestError as exc:
            raise UserError(str(exc)) from None
        _send(bus, request, json)

    @command(app, "cancel")
    def cancel(
        orderid: Annotated[str, typer.Argument(help="The order's id (SIM000001).", show_default=False)],
        bus: BusOpt = None,
        json: JsonOpt = False,
    ) -> None:
        """Cancel an open order of the simulated market."""
        from oaws.protocol.orders import OrderRequest

        _send(bus, OrderRequest(uuid.uuid4().hex, "CANCEL", orderid=orderid), json)
