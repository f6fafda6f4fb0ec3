"""The address book: recorded on send, ranked by frecency, edited, searched by prefix, vCard in and out."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from contacts import actions, search, vcard
from contacts.actions import Card
from contacts.models import Contact, ContactEmail
from mailbox.models import Folder, Message
from outgoing import actions as outgoing_actions
from outgoing import send
from tests.factories import build_message, make_account, store_message

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def suggested(client, q: str) -> list[str]:
    response = client.get(reverse("contacts:suggest"), {"q": q})
    assert response.status_code == 200
    return [item["address"] for item in response.json()["results"]]


# --- Recording and ranking -------------------------------------------------------------------------


def test_sending_records_every_recipient_once_with_the_name_from_the_address(alice, smtp_account, smtp_server):
    account = smtp_account()
    outgoing = send.save_draft(
        alice, None, account=account, to="Bob Builder <bob@example.net>, carol@example.net",
        cc="Dan <dan@example.net>", bcc="hidden@example.net", subject="Hi", body="x",
    )  # fmt: skip
    outgoing_actions.queue(alice, outgoing.id, delay=0)  # no Undo window: sent at once
    assert send.deliver(outgoing.id) is send.Outcome.SENT

    rows = {e.address: e.contact for e in ContactEmail.objects.filter(owner=alice).select_related("contact")}
    assert set(rows) == {"bob@example.net", "carol@example.net", "dan@example.net", "hidden@example.net"}
    assert rows["bob@example.net"].name == "Bob Builder"
    assert all(c.times_contacted == 1 for c in rows.values())


def test_a_failed_contacts_update_never_fails_the_send(alice, smtp_account, smtp_server, monkeypatch):
    account = smtp_account()
    outgoing = send.save_draft(alice, None, account=account, to="bob@example.net", subject="Hi", body="x")
    outgoing_actions.queue(alice, outgoing.id, delay=0)  # no Undo window: sent at once

    def broken(*args, **kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(actions, "record", broken)
    assert send.deliver(outgoing.id) is send.Outcome.SENT
    assert len(smtp_server.received) == 1
    assert not Contact.objects.filter(owner=alice).exists()


def test_recent_contact_outranks_one_written_to_more_often_long_ago(alice, alice_client):
    for days_ago in (400, 390, 380, 370, 360):
        actions.record(alice.id, [("", "old.friend@example.net")], NOW - dt.timedelta(days=days_ago))
    actions.record(alice.id, [("", "new.friend@example.net")], NOW - dt.timedelta(days=2))
    assert suggested(alice_client, "friend") == ["new.friend@example.net", "old.friend@example.net"]


def test_more_mail_at_the_same_time_ranks_higher_and_replies_weigh_more(alice, alice_client):
    actions.record(alice.id, [("", "once@example.net")], NOW)
    actions.record(alice.id, [("", "twice@example.net")], NOW)
    actions.record(alice.id, [("", "twice@example.net")], NOW)
    actions.record(alice.id, [("", "answered@example.net")], NOW, weight=actions.WEIGHT_REPLY * 2)
    assert suggested(alice_client, "example") == ["answered@example.net", "twice@example.net", "once@example.net"]


def test_rank_is_the_log_of_the_decayed_sum():
    one_half_life = search.HALF_LIFE_DAYS
    rank = search.rank_after(None, 1.0, 0.0)
    rank = search.rank_after(rank, 1.0, one_half_life)
    # Worth 1/2 now (a half-life ago) + 1 now = 1.5: log2(1.5) + now / half-life (1 here).
    assert rank == pytest.approx(math.log2(1.5) + 1)


def test_a_name_the_user_typed_is_kept_when_mail_names_the_address_otherwise(alice):
    contact, _taken = actions.create(alice.id, Card(name="Roberto", emails=["bob@example.net"]))
    actions.record(alice.id, [("Bob B.", "BOB@example.net")], NOW)
    contact.refresh_from_db()
    assert contact.name == "Roberto" and contact.times_contacted == 1


def test_filling_in_from_sent_mail_reads_the_users_sent_folder_only(alice, bob, alice_client):
    account = make_account(alice)
    sent = store_message(account, build_message("To Carol", "x", to="Carol <carol@example.net>"), "s-1")
    Message.objects.filter(id=sent.id).update(folder=Folder.SENT)
    store_message(account, build_message("Received", "x", to="stranger@example.net"), "r-1")
    bob_sent = store_message(make_account(bob), build_message("Bob's", "x", to="bobs.friend@example.net"), "b-1")
    Message.objects.filter(id=bob_sent.id).update(folder=Folder.SENT)

    response = alice_client.post(reverse("contacts:seed"))
    assert response.status_code == 302
    assert list(ContactEmail.objects.filter(owner=alice).values_list("address", flat=True)) == ["carol@example.net"]
    assert Contact.objects.get(owner=alice).name == "Carol"


# --- Suggestions -----------------------------------------------------------------------------------


def test_suggestions_match_word_prefixes_of_names_and_addresses_without_case_or_accents(alice, alice_client):
    actions.create(alice.id, Card(name="Jürgen Müller", emails=["j.mueller@firma.example", "jm@home.example"]))
    actions.create(alice.id, Card(name="Anna Schmidt", emails=["anna@firma.example"]))
    assert suggested(alice_client, "MUL") == ["j.mueller@firma.example", "jm@home.example"]
    assert suggested(alice_client, "jurg") == ["j.mueller@firma.example", "jm@home.example"]
    assert suggested(alice_client, "home") == ["jm@home.example", "j.mueller@firma.example"]  # matching first
    assert suggested(alice_client, "anna@firma.ex") == ["anna@firma.example"]
    assert suggested(alice_client, "schmidt anna") == ["anna@firma.example"]
    assert suggested(alice_client, "ller") == []  # a prefix of a word, not any substring
    assert suggested(alice_client, "") == []


@pytest.mark.parametrize("candidate_keys", [1500, 3, 0])  # ranked from the narrowest range, or walked in rank order
def test_several_words_and_dotted_addresses_find_the_contacts_matching_all_of_it(
    alice, bob, alice_client, monkeypatch, candidate_keys
):
    monkeypatch.setattr(search, "CANDIDATE_KEYS", candidate_keys)
    people = [
        (alice, "Anna Schmidt", "a.schmidt@firma.example", 5),
        (alice, "Anna Schneider", "anna.s@web.example", 4),
        (alice, "Anna Weber", "anna@schule.example", 3),  # "sch" in the address
        (alice, "Hannah Schulz", "h.schulz@web.example", 6),  # "anna" inside a word only
        (alice, "Jonas Wagner", "j.wagner@firma.example", 2),
        (alice, "Julia Wagner", "julia.wagner@post.example", 7),
        (alice, "Jan Berg", "jan@wagner.example", 1),
        (bob, "Anna Schober", "anna.schober@example.net", 9),  # another user's
        (alice, "Underscore", "a_b@odd.example", 1),
        (alice, "Not Underscore", "axb@odd.example", 1),  # "_" is no wildcard
    ]
    for user, name, address, rank in people:
        contact, _ = actions.create(user.id, Card(name=name, emails=[address]))
        Contact.objects.filter(id=contact.id).update(rank=rank)
    assert suggested(alice_client, "anna sch") == [
        "a.schmidt@firma.example",
        "anna.s@web.example",
        "anna@schule.example",
    ]
    assert suggested(alice_client, "SCH ANNA") == suggested(alice_client, "anna sch")
    assert suggested(alice_client, "anna schn") == ["anna.s@web.example"]
    assert suggested(alice_client, "j.wagner") == ["j.wagner@firma.example"]  # the whole address first
    assert suggested(alice_client, "jul.wag") == ["julia.wagner@post.example"]  # else its words
    assert suggested(alice_client, "wagner j") == [
        "julia.wagner@post.example",
        "j.wagner@firma.example",
        "jan@wagner.example",
    ]
    assert suggested(alice_client, "anna zz") == []
    assert suggested(alice_client, "a_b@") == ["a_b@odd.example"]


def test_suggestions_are_the_users_own(alice, bob, bob_client):
    actions.create(alice.id, Card(name="Alice's Secret Friend", emails=["secret.friend@example.net"]))
    assert suggested(bob_client, "secret") == []


def test_compose_asks_the_address_book_for_suggestions(alice_client, smtp_account):
    smtp_account()
    page = alice_client.get(reverse("outgoing:compose")).content.decode()
    assert f'data-addresses-url="{reverse("contacts:suggest")}"' in page
    assert 'name="to"' in page  # still a plain text field: typing addresses works without script


# --- Pages -----------------------------------------------------------------------------------------


def test_adding_and_editing_a_contact_through_the_forms(alice, alice_client):
    response = alice_client.post(
        reverse("contacts:add"),
        {"name": "Carol Chen", "emails": "carol@example.net\ncarol@work.example", "notes": "Met at FOSDEM, 2026."},
    )
    contact = Contact.objects.get(owner=alice)
    assert response["Location"] == reverse("contacts:detail", args=[contact.id])
    response = alice_client.post(
        reverse("contacts:edit", args=[contact.id]),
        {"name": "Carol Li", "emails": "carol@work.example\nnew@example.net", "notes": "Line one\nLine two"},
    )
    assert response.status_code == 302
    contact.refresh_from_db()
    assert contact.name == "Carol Li" and contact.notes == "Line one\nLine two"
    assert [e.address for e in contact.emails.all()] == ["carol@work.example", "new@example.net"]
    assert suggested(alice_client, "carol") == ["carol@work.example", "new@example.net"]
    assert suggested(alice_client, "chen") == []  # the old name's words are gone from the search keys


def test_an_invalid_address_is_refused_with_the_form_shown_again(alice, alice_client):
    response = alice_client.post(reverse("contacts:add"), {"name": "X", "emails": "not-an-address"})
    assert response.status_code == 200
    assert "not-an-address" in response.content.decode()
    assert not Contact.objects.filter(owner=alice).exists()


def test_an_address_another_contact_has_stays_there(alice, alice_client):
    first, _ = actions.create(alice.id, Card(name="First", emails=["shared@example.net"]))
    second, taken = actions.create(alice.id, Card(name="Second", emails=["SHARED@example.net", "own@example.net"]))
    assert taken == ["SHARED@example.net"]
    assert [e.address for e in second.emails.all()] == ["own@example.net"]
    assert [e.address for e in first.emails.all()] == ["shared@example.net"]


def test_contact_page_lists_the_users_mail_with_that_person_only(alice, bob, alice_client):
    account = make_account(alice)
    store_message(account, build_message("From Carol", "x", sender="Carol <carol@example.net>"), "a-1")
    store_message(account, build_message("Unrelated", "x", sender="dave@example.net"), "a-2")
    store_message(make_account(bob), build_message("Bob's mail from Carol", "x", sender="carol@example.net"), "b-1")
    contact, _ = actions.create(alice.id, Card(name="Carol", emails=["carol@example.net"]))

    page = alice_client.get(reverse("contacts:detail", args=[contact.id])).content.decode()
    assert "From Carol" in page
    assert "Unrelated" not in page and "Bob&#x27;s mail" not in page and "Bob's mail" not in page


def test_deleting_a_contact_needs_a_post_and_removes_its_addresses(alice, alice_client):
    contact, _ = actions.create(alice.id, Card(name="Gone", emails=["gone@example.net"]))
    assert alice_client.get(reverse("contacts:delete", args=[contact.id])).status_code == 405
    assert alice_client.post(reverse("contacts:delete", args=[contact.id])).status_code == 302
    assert not ContactEmail.objects.filter(owner=alice).exists()
    assert suggested(alice_client, "gone") == []


def test_list_search_finds_by_prefix(alice, alice_client):
    actions.create(alice.id, Card(name="Zoë Zeller", emails=["zoe@example.net"]))
    actions.create(alice.id, Card(name="Yann", emails=["yann@example.net"]))
    page = alice_client.get(reverse("contacts:list"), {"q": "zoe"}).content.decode()
    assert "Zoë Zeller" in page and "Yann" not in page


# --- vCard -----------------------------------------------------------------------------------------

CARDS = [
    Card(name="Jürgen Müller-Lüdenscheidt", emails=["j@example.de", "jürgen@例え.jp", "third@example.net"],
         notes="Kommas, Semikolons; Backslash \\ und\nZeilenumbrüche\n\nmit Leerzeile"),
    Card(name="李小龍 (Bruce)", emails=["bruce@example.cn"], notes=""),
    Card(name="", emails=["nameless@example.net"], notes="Only an address"),
    Card(name="No Address, Only Notes", emails=[], notes="x" * 200),  # folded over several lines
]  # fmt: skip


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_vcard_serialize_then_parse_is_lossless(version):
    text = vcard.serialize(CARDS, version)
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    assert vcard.parse(text) == CARDS


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_export_then_import_into_an_empty_book_gives_the_same_contacts(alice, bob, alice_client, bob_client, version):
    for card in CARDS:
        actions.create(alice.id, card)
    response = alice_client.get(reverse("contacts:export"), {"version": version})
    assert response["Content-Type"] == "text/vcard; charset=utf-8"
    data = response.content
    assert f"VERSION:{version}".encode() in data

    upload = SimpleUploadedFile("contacts.vcf", data, "text/vcard")
    assert bob_client.post(reverse("contacts:import"), {"file": upload}).status_code == 302

    def book(user):
        return sorted(
            (c.name, [e.address for e in c.emails.all()], c.notes) for c in Contact.objects.filter(owner=user)
        )

    assert book(bob) == book(alice)


def test_import_reads_other_programs_vcards():
    text = (
        "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;\r\n"
        "EMAIL;INTERNET:second@example.net\r\nEMAIL;INTERNET;PREF:first@example.net\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Anna\r\n Schmidt\r\n"
        'item1.EMAIL;TYPE="work,voice";PREF=1:mailto:anna@example.net\r\n'
        "NOTE:Line\\nbreak\\, comma\r\nEND:VCARD\r\n"
    )
    assert vcard.parse(text) == [
        Card(name="Jürgen Müller", emails=["first@example.net", "second@example.net"]),
        Card(name="AnnaSchmidt", emails=["anna@example.net"], notes="Line\nbreak, comma"),
    ]


def test_importing_a_card_with_a_known_address_updates_that_contact(alice, alice_client):
    contact, _ = actions.create(alice.id, Card(name="Old", emails=["known@example.net"]))
    text = vcard.serialize([Card(name="New Name", emails=["known@example.net", "extra@example.net"], notes="n")])
    alice_client.post(reverse("contacts:import"), {"file": SimpleUploadedFile("a.vcf", text.encode())})
    contact.refresh_from_db()
    assert Contact.objects.filter(owner=alice).count() == 1
    assert contact.name == "New Name" and contact.notes == "n"
    assert [e.address for e in contact.emails.all()] == ["known@example.net", "extra@example.net"]


def test_a_file_that_is_not_a_vcard_is_refused(alice, alice_client):
    upload = SimpleUploadedFile("a.vcf", b"hello world\n")
    response = alice_client.post(reverse("contacts:import"), {"file": upload})
    assert response.status_code == 200
    assert not Contact.objects.filter(owner=alice).exists()


def test_suggest_endpoint_answers_json(alice, alice_client):
    actions.create(alice.id, Card(name="Eve", emails=["eve@example.net"]))
    response = alice_client.get(reverse("contacts:suggest"), {"q": "ev"})
    assert json.loads(response.content) == {"results": [{"name": "Eve", "address": "eve@example.net"}]}


def test_suggestions_add_people_from_the_users_own_mail_after_the_contacts(alice, bob, alice_client, bob_client):
    from django.urls import reverse

    from contacts import actions as contact_actions
    from tests.factories import build_message, make_account, store_message

    contact_actions.create(alice.id, contact_actions.Card(name="Cara Contact", emails=["cara@contact.example"]))
    store_message(
        make_account(alice),
        build_message("Hi", "x", sender="Carol Jones <carol@example.net>", to="Caroline <caroline@example.com>"),
        "u1",
    )
    url = reverse("contacts:suggest")
    results = [r["address"] for r in alice_client.get(url, {"q": "car"}).json()["results"]]
    assert results[0] == "cara@contact.example"
    assert set(results[1:]) == {"carol@example.net", "caroline@example.com"}
    assert [r["address"] for r in alice_client.get(url, {"q": "jon"}).json()["results"]] == ["carol@example.net"]
    assert bob_client.get(url, {"q": "car"}).json()["results"] == []  # another user's mail is never suggested
