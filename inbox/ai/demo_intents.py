"""The French demo playbook: what a small appointment-based business teaches Sara.

Used by the demo seed and by the tests. Phrases are written the way customers write
(typos, no accents, SMS style) because that is what the classifier will meet.
"""

from __future__ import annotations

from .types import Article, Intent, IntentAction, Playbook, Priority, TicketCategory

AUTO, ESCALATE = IntentAction.AUTO_REPLY, IntentAction.ESCALATE

ARTICLES = (
    Article(
        "horaires", "Horaires d'ouverture",
        "Nous sommes ouverts du lundi au vendredi de 9h à 19h et le samedi de 9h à 13h. "
        "Nous sommes fermés le dimanche et les jours fériés. Le service client répond par "
        "SMS, WhatsApp et e-mail aux mêmes horaires.",
    ),
    Article(
        "tarifs", "Tarifs et prix des prestations",
        "La consultation standard coûte 45 €, la consultation longue (1 heure) 80 €. Le bilan "
        "complet est à 120 €. Les tarifs sont TTC ; le paiement se fait par carte, espèces ou "
        "virement. Un devis gratuit est envoyé sur demande.",
    ),
    Article(
        "mot-de-passe", "Réinitialiser son mot de passe",
        "Pour réinitialiser votre mot de passe, cliquez sur « Mot de passe oublié » sur la page "
        "de connexion, saisissez votre adresse e-mail puis suivez le lien reçu (valable 30 "
        "minutes). Pensez à vérifier vos courriers indésirables.",
    ),
    Article(
        "factures", "Factures et reçus",
        "Vos factures sont disponibles dans votre espace client, rubrique « Mes factures », au "
        "format PDF. Elles sont émises le jour du paiement. Pour une facture au nom d'une "
        "société, indiquez la raison sociale dans votre profil avant le paiement.",
    ),
    Article(
        "livraison", "Livraison et suivi de commande",
        "Les commandes sont expédiées sous 48 h ouvrées et livrées en 2 à 4 jours en France "
        "métropolitaine. Le numéro de suivi est envoyé par e-mail dès l'expédition. La livraison "
        "est offerte dès 60 € d'achat.",
    ),
    Article(
        "rendez-vous", "Prendre, déplacer ou annuler un rendez-vous",
        "Vous pouvez prendre rendez-vous en ligne 24 h/24 depuis notre site, rubrique « Prendre "
        "rendez-vous ». Pour déplacer ou annuler, utilisez le lien reçu dans votre SMS de "
        "confirmation, au plus tard 24 h avant. Un rappel est envoyé la veille.",
    ),
    Article(
        "paiement", "Moyens de paiement",
        "Nous acceptons la carte bancaire (Visa, Mastercard, American Express), les espèces, le "
        "virement et le paiement en trois fois sans frais dès 150 €.",
    ),
    # The same answers in English: a customer who writes in English is answered in English.
    Article(
        "opening-hours-en", "Opening hours",
        "We are open Monday to Friday from 9 am to 7 pm and on Saturday from 9 am to 1 pm. We are "
        "closed on Sundays and public holidays. Customer service answers by SMS, WhatsApp and "
        "email during the same hours.", "en",
    ),
    Article(
        "prices-en", "Prices and fees",
        "A standard consultation costs €45, a long consultation (1 hour) €80. A full check-up is "
        "€120. Prices include VAT; you can pay by card, cash or bank transfer. A free quote is sent "
        "on request.", "en",
    ),
    Article(
        "password-en", "Reset your password",
        "To reset your password, click “Forgot password” on the login page, enter your email "
        "address and follow the link you receive (valid for 30 minutes). Check your spam folder.", "en",
    ),
    Article(
        "invoices-en", "Invoices and receipts",
        "Your invoices are in your customer account, under “My invoices”, as PDF files. They are "
        "issued on the day of payment. For an invoice in a company's name, enter the company name "
        "in your profile before paying.", "en",
    ),
    Article(
        "delivery-en", "Delivery and order tracking",
        "Orders ship within 2 working days and arrive in 2 to 4 days in mainland France. The "
        "tracking number is emailed as soon as the order ships. Delivery is free from €60.", "en",
    ),
    Article(
        "appointments-en", "Book, move or cancel an appointment",
        "You can book an appointment online 24/7 on our website, under “Book an appointment”. To "
        "move or cancel it, use the link in your confirmation text message, at least 24 hours "
        "before. A reminder is sent the day before.", "en",
    ),
)

INTENTS = (
    Intent("opening_hours", (
        "Quels sont vos horaires ?", "Vous êtes ouverts à quelle heure ?", "Vous fermez à quelle heure le soir ?",
        "Etes-vous ouverts le samedi ?", "vous etes ouvert le dimanche ?", "C'est ouvert entre midi et deux ?",
        "A partir de quelle heure je peux passer ?", "horaires d'ouverture svp", "Vous ouvrez à quelle heure demain ?",
        "Est-ce que vous êtes ouverts les jours fériés ?", "jusqu'à quand vous êtes ouverts aujourd'hui",
        "Quels jours êtes-vous fermés ?", "what are your opening hours?", "are you open on saturday",
    ), action=AUTO, article_id="horaires"),
    Intent("pricing", (
        "Combien coûte une consultation ?", "Quels sont vos tarifs ?", "C'est combien ?", "Quel est le prix du bilan ?",
        "vous prenez combien pour une séance d'une heure", "Je voudrais connaître vos prix",
        "Est-ce que vous faites des devis ?", "Le tarif est-il TTC ?", "combien je vais payer",
        "Quel est le coût d'un rendez-vous ?", "Vous avez une grille tarifaire ?", "how much does it cost?",
        "Les prix ont augmenté ?",
    ), action=AUTO, article_id="tarifs"),
    Intent("password_reset", (
        "J'ai oublié mon mot de passe", "Je n'arrive pas à me connecter, mot de passe perdu",
        "Comment réinitialiser mon mot de passe ?", "mdp oublié", "Je ne reçois pas le mail pour changer mon mot de passe",
        "Le lien de réinitialisation ne marche plus", "Comment changer mon mot de passe ?",
        "Mon mot de passe est refusé", "impossible de me connecter à mon espace client",
        "je me suis trompé de mot de passe trop de fois", "I forgot my password", "reset password",
    ), action=AUTO, article_id="mot-de-passe", category=TicketCategory.ACCOUNT),
    Intent("invoice_request", (
        "Je voudrais ma facture", "Où trouver mes factures ?", "Pouvez-vous m'envoyer une facture ?",
        "J'ai besoin d'un reçu pour ma mutuelle", "Comment télécharger ma facture ?",
        "Il me faut une facture au nom de ma société", "je n'ai pas reçu ma facture",
        "facture du mois dernier svp", "Vous pouvez me renvoyer le reçu ?", "Ou est ma facture de mars",
        "can I get an invoice", "Je souhaite un duplicata de facture",
    ), action=AUTO, article_id="factures", category=TicketCategory.BILLING),
    Intent("billing_dispute", (
        "On m'a prélevé deux fois", "J'ai été débité deux fois pour le même rendez-vous",
        "Le montant prélevé n'est pas le bon", "Vous m'avez facturé trop cher",
        "Il y a une erreur sur ma facture", "Je conteste ce prélèvement", "Je veux être remboursé",
        "Remboursez-moi la séance annulée", "double prélèvement sur mon compte",
        "pourquoi j'ai payé 80 euros au lieu de 45", "Le paiement est passé deux fois sur ma carte",
        "vous m'avez débité alors que j'avais annulé", "I was charged twice", "wrong amount charged",
    ), action=ESCALATE, category=TicketCategory.BILLING, priority=Priority.HIGH),
    Intent("payment_methods", (
        "Vous acceptez la carte bleue ?", "Je peux payer en espèces ?", "Est-ce qu'on peut payer en plusieurs fois ?",
        "Vous prenez les chèques ?", "Quels moyens de paiement acceptez-vous ?", "paiement par virement possible ?",
        "Je peux payer avec American Express ?", "paiement en 3 fois", "Do you accept credit cards?",
        "Vous acceptez les tickets resto ?",
    ), action=AUTO, article_id="paiement", category=TicketCategory.BILLING),
    Intent("delivery_status", (
        "Où en est ma commande ?", "Je n'ai toujours pas reçu mon colis", "Quand vais-je être livré ?",
        "Quel est le délai de livraison ?", "Mon colis est en retard", "je voudrais le numéro de suivi",
        "La livraison est-elle gratuite ?", "Vous livrez en Belgique ?", "ma commande n'est pas arrivée",
        "combien de temps pour recevoir ma commande", "where is my order", "Le colis est bloqué depuis une semaine",
    ), action=AUTO, article_id="livraison"),
    Intent("appointment_book", (
        "Je voudrais prendre rendez-vous", "Comment réserver un créneau ?", "Avez-vous une disponibilité mardi ?",
        "Je souhaite un rendez-vous la semaine prochaine", "Est-il possible de venir demain matin ?",
        "prendre rdv svp", "Vous avez de la place jeudi après-midi ?", "Je peux réserver en ligne ?",
        "Je voudrais une consultation rapidement", "un rdv pour ma fille c'est possible ?",
        "I'd like to book an appointment", "Quel est le prochain créneau libre ?",
    ), action=AUTO, article_id="rendez-vous"),
    Intent("appointment_reschedule", (
        "Je voudrais déplacer mon rendez-vous", "Est-ce que je peux décaler mon rdv à 15h ?",
        "Je ne peux pas venir jeudi, on peut changer ?", "Pouvez-vous reporter mon rendez-vous ?",
        "Je souhaite modifier l'heure de mon rendez-vous", "Mon rdv de demain, on peut le mettre plus tard ?",
        "changer la date de mon rendez-vous", "je dois reprogrammer ma séance",
        "can I move my appointment", "Je serai en retard de 20 minutes, c'est possible de décaler ?",
    ), action=AUTO, article_id="rendez-vous"),
    Intent("appointment_cancel", (
        "Je voudrais annuler mon rendez-vous", "Annulez mon rdv de demain s'il vous plaît",
        "Je ne viendrai pas à mon rendez-vous", "Comment annuler une réservation ?",
        "Je dois annuler ma séance de jeudi", "annulation de mon rendez-vous", "je suis malade je ne pourrai pas venir",
        "Merci d'annuler ma consultation", "please cancel my appointment", "Je me désiste pour lundi",
    ), action=AUTO, article_id="rendez-vous"),
    Intent("appointment_list", (
        "Quand est mon prochain rendez-vous ?", "J'ai rendez-vous à quelle heure ?", "Pouvez-vous me rappeler la date de mon rdv ?",
        "Quels sont mes rendez-vous à venir ?", "C'est bien demain mon rendez-vous ?", "J'ai oublié l'heure de mon rdv",
        "A quelle heure je dois venir jeudi ?", "Mon rendez-vous est toujours maintenu ?",
        "when is my next appointment", "Je ne me souviens plus du jour de mon rendez-vous",
    ), action=ESCALATE, priority=Priority.LOW),
    Intent("complaint", (
        "Je ne suis pas satisfait du service", "Je veux faire une réclamation", "Le praticien a été désagréable",
        "J'ai attendu une heure dans la salle d'attente", "Votre service est vraiment décevant",
        "Personne ne répond au téléphone", "Je suis très mécontent de la prestation", "Je souhaite déposer une réclamation",
        "Le résultat n'est pas du tout ce qui était promis", "on m'a mal reçu à l'accueil", "I want to make a complaint",
        "c'est la troisième fois que je relance sans réponse",
    ), action=ESCALATE, priority=Priority.HIGH),
    Intent("bug_report", (
        "L'application plante quand je paie", "Le site affiche une erreur 500", "Le bouton de réservation ne marche pas",
        "Je n'arrive pas à ouvrir le lien du SMS", "La page reste blanche", "L'appli se ferme toute seule",
        "Le formulaire ne s'envoie pas", "message d'erreur quand je valide le paiement",
        "the app keeps crashing", "Le calendrier ne s'affiche pas sur mon téléphone", "ça bug",
        "L'appli plante tout le temps", "Le site ne fonctionne pas", "Erreur technique sur votre site",
        "ça plante au moment du paiement",
    ), action=ESCALATE, category=TicketCategory.BUG_REPORT),
    Intent("suggestion", (
        "Ce serait bien de pouvoir payer par PayPal", "Vous devriez ouvrir le dimanche",
        "Une suggestion : ajouter des créneaux le soir", "Pourquoi pas une application mobile ?",
        "J'aimerais pouvoir choisir mon praticien en ligne", "Idée d'amélioration pour votre site",
        "Vous pourriez envoyer le rappel deux jours avant", "it would be great to have a dark mode",
        "Ce serait pratique d'avoir un chat sur le site",
    ), action=ESCALATE, category=TicketCategory.SUGGESTION, priority=Priority.LOW),
    Intent("human_request", (
        "Je veux parler à quelqu'un", "Passez-moi un conseiller", "Je voudrais parler à un humain",
        "Est-ce qu'une vraie personne peut me répondre ?", "Je préfère parler à une personne",
        "Mettez-moi en relation avec le service client", "Un conseiller peut m'appeler ?",
        "je veux pas parler à un robot", "talk to a human please", "Vous êtes un robot ?",
    ), action=ESCALATE, always_escalate=True),
)

# Messages a support inbox receives that no intent covers: taught as "out of scope".
OUT_OF_SCOPE = (
    "Quel temps fera-t-il demain ?", "Raconte-moi une blague", "Qui a gagné le match hier soir ?",
    "Quelle est la capitale de l'Australie ?", "Tu peux m'aider à faire mes devoirs de maths ?",
    "Donne-moi une recette de tarte aux pommes", "Combien font 12 fois 7 ?", "Quel film me conseilles-tu ce soir ?",
    "Traduis bonjour en espagnol", "Tu connais un bon plombier ?", "Quelle heure est-il à New York ?",
    "Écris-moi un poème sur la mer", "Quel est le cours du bitcoin ?", "Tu es libre ce soir ?",
    "Je cherche un appartement à louer", "what's the weather like", "tell me a joke", "who won the election",
)

PLAYBOOK = Playbook(intents=INTENTS, articles=ARTICLES, out_of_scope_examples=OUT_OF_SCOPE)
