"""Graph mail activities: send mail, find a person's mailbox, mail a Temporary Access Pass."""

from __future__ import annotations

from datetime import timedelta
from html import escape

import httpx
from kiota_abstractions.base_request_configuration import RequestConfiguration
from msgraph.generated.models.body_type import BodyType
from msgraph.generated.models.email_address import EmailAddress
from msgraph.generated.models.item_body import ItemBody
from msgraph.generated.models.message import Message
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.recipient import Recipient
from msgraph.generated.models.temporary_access_pass_authentication_method import (
    TemporaryAccessPassAuthenticationMethod,
)
from msgraph.generated.users.item.send_mail.send_mail_post_request_body import (
    SendMailPostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.graph import errors as graph_errors
from activities.graph.directory import GraphDirectory
from activities.graph.errors import graph_call
from activities.graph.odata import graph_time, parse_graph_time
from activities.unsendable import UNSENDABLE
from domain.inbound import character_problem
from domain.provisioning import (
    ActivityNames,
    EmployeeIdInput,
    IssueTapToManagerInput,
    Mailbox,
    SendMailInput,
    TapIssued,
)


def subject_line(text: str, limit: int = 255) -> str:
    """A subject as one printable line: control, separator and bidi characters become spaces
    (subjects quote names and package titles; no value may fold or reorder a mail header)."""
    cleaned = "".join(" " if character_problem(c) else c for c in text)
    return " ".join(cleaned.split())[:limit]


class GraphMail(GraphDirectory):
    """Mail and Temporary Access Passes; managers' mailboxes come from the shared manager cache."""

    async def _send_mail(self, sender: str, to: str, subject: str, html: str, call: str) -> None:
        body = SendMailPostRequestBody(
            message=Message(
                subject=subject_line(subject),
                body=ItemBody(content_type=BodyType.Html, content=html),
                to_recipients=[Recipient(email_address=EmailAddress(address=to))],
            ),
            save_to_sent_items=False,
        )
        try:
            await self._client.users.by_user_id(sender).send_mail.post(body)
        except (ODataError, httpx.TransportError, *UNSENDABLE) as err:
            raise graph_errors.to_application_error(err, call) from None
        except Exception as err:
            # Anything else could quote the message (and so a pass): keep only the type.
            raise ApplicationError(f"{call}: {type(err).__name__}", type="GraphError") from None

    @activity.defn(name=ActivityNames.GRAPH_FIND_MAILBOX)
    async def find_mailbox(self, input: EmployeeIdInput) -> Mailbox:
        """The account and mail address of a person by employeeId (retryable while not there)."""
        found = await self._manager(input.employee_id)
        return Mailbox(user_id=found.user_id, address=found.address)

    @activity.defn(name=ActivityNames.GRAPH_SEND_MAIL)
    async def send_mail(self, input: SendMailInput) -> None:
        if input.to_address:
            await self._send_mail(
                input.sender,
                input.to_address,
                input.subject,
                input.html_body,
                f"send mail to {input.to_user_id}",
            )
            return
        call = f"look up mail address of user {input.to_user_id}"
        config = RequestConfiguration(
            query_parameters=UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
                select=["mail", "userPrincipalName"]
            )
        )
        with graph_call(call):
            user = await self._client.users.by_user_id(input.to_user_id).get(
                request_configuration=config
            )
        address = (user.mail or user.user_principal_name) if user else None
        if not address:
            raise ApplicationError(f"{call}: no address", type="GraphNotFound", non_retryable=True)
        await self._send_mail(
            input.sender,
            address,
            input.subject,
            input.html_body,
            f"send mail to {input.to_user_id}",
        )

    @activity.defn(name=ActivityNames.GRAPH_ISSUE_TAP_TO_MANAGER)
    async def issue_temporary_access_pass_to_manager(
        self, input: IssueTapToManagerInput
    ) -> TapIssued:
        manager = await self._manager(input.manager_employee_id)
        methods = self._client.users.by_user_id(input.user_id).authentication
        methods = methods.temporary_access_pass_methods
        # A pass's secret can never be read again, and Graph replaces a user's valid pass when a
        # new one is created: a retry simply issues a new pass, and the one mailed last works.
        request = TemporaryAccessPassAuthenticationMethod(
            start_date_time=input.start_at,
            lifetime_in_minutes=input.lifetime_minutes,
            is_usable_once=True,
        )
        with graph_call(f"create temporary access pass for user {input.user_id}"):
            created = await self._send_for_json(methods.to_post_request_information(request))
        method_id, secret = created.get("id"), created.pop("temporaryAccessPass", None)
        if not method_id or not secret:
            raise ApplicationError(
                f"create temporary access pass for user {input.user_id}: no pass returned",
                type="GraphBadResponse",
            )
        start = parse_graph_time(created.get("startDateTime")) or input.start_at
        end = start + timedelta(minutes=input.lifetime_minutes)
        html = (
            f"<p>Hello {escape(manager.display_name)},</p>"
            f"<p>{escape(input.user_display_name)} joins your team. To sign in the first time, "
            f"they need this one-time Temporary Access Pass:</p>"
            f"<p style='font-size:1.4em'><b>{escape(secret)}</b></p>"
            f"<p>It is valid from {graph_time(start)} until {graph_time(end)} (UTC) and works "
            f"once. Please hand it over in person or by phone.</p>"
        )
        del secret, created  # drop the secret as soon as it is in the mail
        await self._send_mail(
            input.mail_sender,
            manager.address,
            f"Temporary Access Pass for {input.user_display_name}",
            html,
            f"mail temporary access pass of {input.user_id} to manager {manager.user_id}",
        )
        del html
        return TapIssued(
            tap_method_id=method_id,
            mailed_to_user_id=manager.user_id,
            start_at=start,
            lifetime_minutes=input.lifetime_minutes,
        )
