"""PostgreSQL search documents are built after ingest; search never misses a message meanwhile."""

import io

import pytest
from django.core.management import call_command

from mailbox import search
from mailbox.models import Message
from tests.conftest import require_postgresql
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _postgresql():
    require_postgresql()


def find(owner, query: str) -> set[int]:
    return set(search.apply(Message.objects.filter(owner=owner), search.parse(query)).values_list("id", flat=True))


def test_new_message_is_found_before_and_after_it_is_indexed(alice):
    account = make_account(alice)
    message = store_message(account, build_message("Quarterly figures", "The zeppelin lands at noon."), "u1")
    other = store_message(account, build_message("Lunch", "Nothing to see."), "u2")
    assert Message.objects.filter(search_document__isnull=True).count() == 2  # not built at insert

    assert find(alice, "zeppelin") == {message.id}  # by substring, meanwhile
    assert find(alice, "zeppelin noon") == {message.id}
    assert find(alice, "zeppelin lunch") == set()

    assert search.index_pending() == 2
    assert search.index_pending() == 0
    assert Message.objects.filter(search_document__isnull=True).count() == 0
    assert find(alice, "zeppelin") == {message.id}  # through the index now
    assert find(alice, "lunch") == {other.id}
    assert find(alice, "quarterly") == {message.id}


def test_indexing_is_done_in_batches_until_caught_up(alice):
    account = make_account(alice)
    for i in range(7):
        store_message(account, build_message(f"Note {i}", f"word{i}"), f"u{i}")
    assert search.index_pending(limit=3) == 3
    assert search.index_all_pending() == 4
    assert find(alice, "word5") != set()


def test_editing_an_indexed_column_rebuilds_the_document_at_once(alice):
    account = make_account(alice)
    message = store_message(account, build_message("Old subject", "body"), "u1")
    search.index_all_pending()
    Message.objects.filter(id=message.id).update(subject="Renamed walrus")
    assert Message.objects.get(id=message.id).search_document is not None
    assert find(alice, "walrus") == {message.id}
    assert find(alice, "old") == set()


def test_other_users_pending_messages_are_never_matched(alice, bob):
    store_message(make_account(alice), build_message("Secret", "platypus"), "u1")
    assert find(bob, "platypus") == set()


def test_syncmail_leaves_the_index_caught_up(alice):
    account = make_account(alice, host="127.0.0.1", port=1, security="none")  # the sync fails: no server
    store_message(account, build_message("Stored earlier", "narwhal"), "u1")
    with pytest.raises(SystemExit):
        call_command("syncmail", str(account.id), stdout=io.StringIO())
    assert Message.objects.filter(search_document__isnull=True).count() == 0


def test_indexing_replaces_the_owners_kept_search_page(alice, alice_client, bob, bob_client):
    """A kept search page (webpop.lib.pagecache) is built again once its owner's new mail is indexed."""
    message = store_message(make_account(alice), build_message("Quarterly figures", "The zeppelin lands."), "u1")
    store_message(make_account(bob), build_message("Bob's figures", "No airships."), "u1")
    for client in (alice_client, bob_client):
        client.get("/?q=zeppelin")
        assert client.get("/?q=zeppelin").context is None  # kept
    alice_client.get("/")
    assert search.index_pending() == 2
    assert alice_client.get("/").context is None, "the inbox shows nothing indexing changes: still kept"
    page = alice_client.get("/?q=zeppelin")
    assert page.context is not None and page.context["rows"][0]["id"] == message.id
    assert bob_client.get("/?q=zeppelin").context is not None
