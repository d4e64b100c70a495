"""Demo tickets for the seeded workspace, built through the real actions (never raw inserts):
varied statuses and priorities, a late SLA, time logged at effective-dated rates, a client
budget close to its 80 % alert, a resolved ticket with its rating."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_UP, Decimal

from sqlalchemy import select

from .actions.budgets import do_set_budget
from .actions.ratings import do_record_rating
from .actions.tickets import do_add_ticket_note, do_change_status, do_create_ticket
from .actions.timetracking import do_log_time, do_set_user_rate, local_today
from .extensions import db
from .models import (
    Availability, BudgetPeriod, Contact, Conversation, TicketSettings, TicketSource, TicketStatus, Workspace,
    utcnow,
)
from .models.budget import period_bounds
from .models.timeentry import spend_of

# (client, subject, description, category, priority, agent index or None, hours ago, status,
#  [(agent index, minutes, note)])
DEMO_TICKETS = [
    ("Élodie Fournier", "Commande n°4471 toujours pas livrée",
     "Colis bloqué au dépôt de Rungis. La cliente a un client qui attend la commande.",
     "general", "high", 0, 50, TicketStatus.IN_PROGRESS, [(0, 25, "Appel transporteur"), (0, 20, "Suivi Rungis")]),
    ("Thomas Lefèvre", "Connexion impossible à l'espace client depuis la mise à jour",
     "Message « identifiants invalides » alors que le mot de passe a été réinitialisé hier.",
     "account", "medium", 1, 26, TicketStatus.IN_PROGRESS, [(1, 35, "Reproduction sur un compte de test")]),
    ("Lucas Girard", "Abonnement facturé deux fois en novembre",
     "La facture de novembre affiche deux fois la ligne « Abonnement Pro ».", "billing", "medium", None, 2,
     TicketStatus.OPEN, []),
    ("Martine Roux", "Terminal de paiement hors service",
     "Le terminal ne s'allume plus depuis ce matin ; la pharmacie encaisse en espèces uniquement.",
     "technical", "critical", 2, 4, TicketStatus.IN_PROGRESS,
     [(2, 90, "Diagnostic à distance"), (2, 60, "Intervention sur site"), (1, 45, "Échange du bloc d'alimentation")]),
    ("Antoine Mercier", "Devis pour 5 licences supplémentaires",
     "Devis envoyé ; en attente du bon de commande signé.", "general", "low", 0, 72,
     TicketStatus.WAITING_ON_CUSTOMER, [(0, 15, "Préparation du devis")]),
    ("Chloé Dubois", "Configuration de l'imprimante de caisse",
     "L'imprimante n'imprimait plus les tickets après le changement de rouleau.", "technical", "low", 1, 30,
     TicketStatus.RESOLVED, [(1, 20, "Assistance téléphonique")]),
    ("Sarah Cohen", "Paiement par carte refusé", "Carte valide mais paiement refusé sur la page d'abonnement.",
     "billing", "high", 1, 0.3, TicketStatus.OPEN, []),
    ("Hugo Lambert", "Proposer la livraison le samedi", "Le client aimerait être livré le samedi matin.",
     "suggestion", "low", None, 5, TicketStatus.OPEN, []),
]


def seed_tickets(workspace: Workspace, *, admin, agents: list) -> str:
    now = utcnow()
    settings = TicketSettings.ensure(workspace.id)
    settings.on_call_user_id = agents[0].id
    for agent in agents[:2]:
        agent.availability = Availability.ONLINE
    db.session.commit()
    # Sophie's cost went up this month: her earlier work keeps the old rate.
    month_start, _ = period_bounds(BudgetPeriod.MONTH, local_today(workspace.id, now))
    do_set_user_rate(agents[1], agents[1].hourly_cost + Decimal("3.00"), effective_from=month_start, actor=admin)

    for (name, subject, description, category, priority, agent_index, hours_ago, status, work) in DEMO_TICKETS:
        contact = db.session.scalar(select(Contact).where(Contact.workspace_id == workspace.id, Contact.name == name))
        conversation = Conversation.active_for_contact(contact.id)
        agent = agents[agent_index] if agent_index is not None else None
        created = now - timedelta(hours=hours_ago)
        ticket = do_create_ticket(
            contact, subject=subject, description=description, category=category, priority=priority,
            actor=agent or admin, assignee=agent, conversation=conversation, notify_customer=False,
            source=TicketSource.CONVERSATION if conversation else TicketSource.AGENT, now=created)
        for agent_i, minutes, note in work:
            do_log_time(ticket, user=agents[agent_i], minutes=minutes, note=note, now=now)
        if status == TicketStatus.IN_PROGRESS:
            do_change_status(ticket, status, actor=agent, now=created + timedelta(minutes=20))
            do_add_ticket_note(ticket, "Client prévenu par téléphone, je reviens vers lui dès que possible.",
                               actor=agent, internal=True, now=created + timedelta(minutes=25))
        elif status == TicketStatus.WAITING_ON_CUSTOMER:
            do_change_status(ticket, status, actor=agent, now=created + timedelta(hours=1), notify_customer=False)
        elif status == TicketStatus.RESOLVED:
            do_change_status(ticket, status, actor=agent, now=created + timedelta(hours=3), notify_customer=False,
                             resolution="Rouleau remis dans le bon sens et pilote réinstallé.")
            do_record_rating(ticket, 5, "Super réactifs, merci !", source="sms", now=created + timedelta(hours=5))

    # The pharmacy's monthly budget, about 76 % used: the next hour logged crosses the 80 % alert.
    pharmacy = db.session.scalar(select(Contact).where(Contact.workspace_id == workspace.id,
                                                       Contact.name == "Martine Roux"))
    start, end = period_bounds(BudgetPeriod.MONTH, local_today(workspace.id, now))
    spent = spend_of(workspace.id, contact_id=pharmacy.id, start=start, end=end).cost
    do_set_budget(pharmacy, period=BudgetPeriod.MONTH, amount=(spent / Decimal("0.76")).quantize(Decimal("1"), ROUND_UP),
                  actor=admin)
    return f"{len(DEMO_TICKETS)} tickets"
