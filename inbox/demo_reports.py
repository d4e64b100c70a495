"""Eight weeks of past work for the demo workspace, so the dashboard and the reports have a
history to show: tickets opened and resolved week after week by each agent, their first answers,
ratings with comments, time logged at each agent's rate, and monthly budgets for a few clients.

Built through the real actions, each told what time it was (`now=`). The first answer of a past
ticket is back-dated on the ticket itself: a real reply would be sent to the customer today.
No message is sent and no alert fires: the pharmacy's budget, set by demo_tickets.py to sit
just under its 80 % alert, gets no time in the current month.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import select

from .actions.budgets import do_set_budget
from .actions.ratings import do_record_rating
from .actions.tickets import do_change_status, do_create_ticket
from .actions.timetracking import do_log_time, local_today
from .extensions import db
from .models import BudgetPeriod, Contact, TicketSettings, TicketSource, TicketStatus, Workspace, utcnow
from .models.budget import period_bounds

WEEKS = 8
SUBJECTS = {
    "billing": ["Facture en double", "Remboursement d'un avoir", "Changement d'IBAN", "Relance de paiement"],
    "technical": ["Imprimante de caisse muette", "Terminal qui redémarre", "Synchronisation du stock en échec",
                  "Lecteur de code-barres non reconnu"],
    "account": ["Mot de passe oublié", "Ajout d'un utilisateur", "Changement d'adresse e-mail"],
    "general": ["Horaires pendant les fêtes", "Demande de devis", "Livraison du samedi"],
    "bug_report": ["Le total du panier est faux", "Export comptable vide"],
    "suggestion": ["Ajouter le paiement sans contact", "Un rappel SMS la veille"],
}
COMMENTS = {
    5: ["Parfait, merci pour la rapidité !", "Très pro, problème réglé en un appel.", "Au top 👍"],
    4: ["Bien, mais il a fallu relancer une fois.", "Efficace."],
    3: ["Correct, un peu long à obtenir une réponse.", None],
    2: ["Trois jours pour une simple facture…"],
    1: ["Personne ne m'a rappelé."],
}
BUDGETS = {"Élodie Fournier": "350", "Thomas Lefèvre": "250", "Hugo Lambert": "200"}  # per month
PHARMACY = "Martine Roux"


def seed_report_history(workspace: Workspace, *, admin, agents: list) -> str:
    rng = random.Random(6)  # the same demo on every machine
    now = utcnow()
    this_month = period_bounds(BudgetPeriod.MONTH, local_today(workspace.id, now))[0]
    clients = list(db.session.scalars(select(Contact).where(Contact.workspace_id == workspace.id).order_by(Contact.id)))
    team = [admin, *agents]
    auto_close_after = timedelta(days=TicketSettings.of(workspace.id).auto_close_days)
    count = 0
    for week in range(WEEKS, 0, -1):
        for _ in range(rng.randint(3, 6)):
            created = now - timedelta(days=7 * week - rng.uniform(0, 6), hours=rng.uniform(0, 8))
            agent = rng.choice(agents)
            client = rng.choice(clients)
            _past_ticket(rng, client, agent, team, created=created, now=now, this_month=this_month,
                         auto_close_after=auto_close_after)
            count += 1
    for contact in clients:
        if contact.name in BUDGETS:
            do_set_budget(contact, period=BudgetPeriod.MONTH, amount=BUDGETS[contact.name], actor=admin)
    return f"{count} past tickets"


def _past_ticket(rng: random.Random, client: Contact, agent, team: list, *, created, now, this_month,
                 auto_close_after: timedelta) -> None:
    category = rng.choice(list(SUBJECTS))
    priority = rng.choices(["low", "medium", "high"], weights=[3, 5, 2])[0]  # critical would page on-call today
    ticket = do_create_ticket(client, subject=rng.choice(SUBJECTS[category]), category=category, priority=priority,
                              actor=agent, assignee=agent, source=rng.choice([TicketSource.CONVERSATION, TicketSource.AI,
                                                                              TicketSource.AGENT]),
                              notify_customer=False, now=created)
    ticket.first_responded_at = ticket.last_agent_reply_at = created + timedelta(minutes=rng.choice(
        [12, 25, 40, 75, 110, 180, 260, 420]))
    db.session.commit()
    worked = min(created + timedelta(hours=rng.uniform(2, 60)), now - timedelta(hours=1))
    # Every past ticket is done: only today's demo tickets wait on the team.
    do_change_status(ticket, TicketStatus.RESOLVED, actor=agent, notify_customer=False, now=worked,
                     resolution="Résolu avec le client.")
    if rng.random() < 0.8:
        score = rng.choices([5, 4, 3, 2, 1], weights=[9, 6, 2, 1, 1])[0]
        do_record_rating(ticket, score, rng.choice(COMMENTS[score]), source=rng.choice(["sms", "link", "whatsapp"]),
                         now=min(worked + timedelta(minutes=rng.uniform(30, 600)), now))
    # Closed when auto-close would have closed it, quietly: left resolved, the first sweep after
    # `make run` would close them all at once and tell every customer, topping the inbox with notices.
    closing = worked + auto_close_after
    if closing <= now:
        do_change_status(ticket, TicketStatus.CLOSED, actor=None, notify_customer=False, now=closing)
    day = created.date()
    if client.name == PHARMACY and day >= this_month:
        return  # keep the pharmacy's budget just under its alert (demo_tickets.py)
    for _ in range(rng.randint(1, 3)):
        do_log_time(ticket, user=rng.choice([ticket.assignee, *team[:1]]), minutes=rng.choice([10, 15, 20, 30, 45, 60, 90]),
                    work_date=day, note="", now=now)
