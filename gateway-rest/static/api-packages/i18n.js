// Languages of the landing page: French (the default, written in index.html) and Arabic.
//
// How it works, and how to translate a new block (the waitlist form, say):
// - Static text: give the element `data-i18n="some.key"` and add `some.key` to `ar` below. The
//   French is the page's own HTML, read once from the element; no French copy lives here.
//   Attributes: `data-i18n-attr="aria-label:some.key; placeholder:other.key"`.
// - Text written by a script: `IAF_I18N.t('key', {name: value})`, with the key in BOTH `fr` and
//   `ar` below; counts go through `IAF_I18N.plural('key', n, {...})`, whose entries hold one form
//   per CLDR plural category of the language (French: one, many, other; Arabic: zero, one, two,
//   few, many, other), chosen by `Intl.PluralRules`.
// - A change of language fires `iaf:lang` on `document`: a script re-renders what it wrote.
//
// The choice is remembered in localStorage (no cookie, so no consent banner), and only when the
// visitor picks a language: a French visitor stores nothing. A link can carry `?lang=ar`.
// Loaded without `defer` in <head>, so `lang` and `dir` are right before the first paint.
'use strict';

window.IAF_I18N = (() => {
  const STORE = 'iaf-lang';
  // Arabic as written in Algeria, with Western digits (the ones Algerian readers use for
  // prices), Maghreb month names (جوان, جويلية…) from the ar-DZ locale.
  const META = {
    fr: { dir: 'ltr', locale: 'fr-FR', name: 'Français' },
    ar: { dir: 'rtl', locale: 'ar-DZ-u-nu-latn', name: 'العربية' },
  };

  // Strings written by scripts (French and Arabic), and Arabic for the page's static text.
  const DICT = {
    fr: {
      'lang.switch': 'Français',
      'currency': 'DZD',
      'months': { one: '{n}\u00a0mois', other: '{n}\u00a0mois' },
      'days': { one: '{n}\u00a0jour', other: '{n}\u00a0jours' },
      'seconds': { one: '{n}\u00a0seconde', other: '{n}\u00a0secondes' },
      'clients': { one: 'le premier client', other: 'les {n} premiers clients' },
      'clientsTo': { one: 'au premier client', other: 'aux {n} premiers clients' },
      'promo.loading': 'Chargement des places restantes\u2026',
      'promo.unavailable': 'Le nombre de places restantes est momentanément indisponible.',
      'promo.generic': 'Offre de lancement\u00a0: une réduction pour les premiers clients.',
      'promo.closed': 'L\u2019offre de lancement n\u2019est plus disponible.',
      'promo.normalPrice': 'Les forfaits restent disponibles au tarif normal.',
      'promo.upTo': 'Offre de lancement\u00a0: jusqu\u2019à \u2212{pct}\u00a0% pendant {months}.',
      'promo.enterCode': 'Code {code} à saisir à l\u2019inscription.',
      'promo.openUpTo': 'Offre de lancement\u00a0: jusqu\u2019à \u2212{pct}\u00a0% pendant {months} pour {clients}.',
      'promo.openGeneric': 'Offre de lancement\u00a0: une réduction pour {clients}.',
      'promo.over': { one: 'L\u2019offre de lancement est terminée\u00a0: la place a été prise.', other: 'L\u2019offre de lancement est terminée\u00a0: les {n} places ont été prises.' },
      'promo.overAll': 'L\u2019offre de lancement est terminée\u00a0: toutes les places ont été prises.',
      'promo.full': { one: 'Complet\u00a0: {n} place sur {n}', other: 'Complet\u00a0: {n} places sur {n}' },
      'promo.fullShort': 'Complet',
      'promo.taken': { one: '{n} place prise sur {total}', other: '{n} places prises sur {total}' },
      'promo.strong': { one: 'une', other: '{n}' },
      'promo.remaining': { one: 'Plus qu\u2019{strong} place sur {total}\u00a0!', other: 'Plus que {strong} places sur {total}' },
      'promo.none': 'Aucune place prise pour l\u2019instant',
      'promo.filled': { one: '{n} place déjà prise', other: '{n} places déjà prises' },
      'tagline.starter': 'Pour découvrir l\u2019API et lancer un premier projet.',
      'tagline.dev': 'Pour les développeurs et les applications en production.',
      'tagline.business': 'Pour les équipes et les produits à fort trafic.',
      'tagline.premium': 'Pour les gros volumes et les usages critiques.',
      'pkg.perMonth': '/ mois',
      'pkg.tokens': '{n} jetons / mois',
      'pkg.rpm': '{n} requêtes / min',
      'pkg.best': 'Meilleure remise\u00a0: \u2212{pct}\u00a0%',
      'pkg.wasLabel': 'Prix normal\u00a0: ',
      'pkg.note': '\u2212{pct}\u00a0% pendant {months} avec {code}',
      'pkg.normal': 'Tarif normal',
      'pkg.over': 'Offre {code} terminée\u00a0: tarif normal',
      'pkg.choose': 'Choisir {name} \u2014 {price}/mois',
      'pkg.option': '{name} \u2014 {price}/mois',
      'pkg.lead': 'Prix mensuels en dinars algériens (DZD).',
      'pkg.leadCode': 'Prix mensuels en dinars algériens (DZD). Avec le code {code}, la réduction s\u2019applique pendant {months} à partir de l\u2019inscription.',
      'faq.range1': 'de {pct}\u00a0%',
      'faq.range': 'de {lo}\u00a0% à {hi}\u00a0% selon le forfait',
      'faq.launch': 'Il est réservé {clientsTo}. Saisissez-le à l\u2019inscription\u00a0: la réduction de votre forfait ({range}) s\u2019applique pendant {months} à compter de la date d\u2019inscription. Un seul usage par adresse e-mail.',
      'faq.models': 'Ceux de {makers}, selon votre forfait. La liste à jour pour votre clé est donnée par {endpoint}.',
      'faq.billing': 'Une facture en dinars, numérotée et à notre nom, est émise au début de chaque mois d\u2019abonnement\u00a0; elle est à régler sous {due}{methods}. {tax} {key} Sans paiement {grace} après l\u2019échéance, l\u2019accès est suspendu jusqu\u2019au règlement. Vos factures sont dans votre {account}.',
      'faq.methods': ', {list}',
      'pay.card': 'par carte Edahabia ou CIB',
      'pay.bank': 'par virement bancaire',
      'pay.ccp': 'par virement CCP',
      'pay.baridimob': 'par BaridiMob',
      'tax.incl': 'Les prix affichés sont TTC (TVA de {rate}\u00a0% comprise).',
      'tax.excl': 'Les prix affichés sont hors taxes\u00a0: la TVA de {rate}\u00a0% s\u2019y ajoute.',
      'tax.none': 'Aucune TVA n\u2019est facturée.',
      'key.prepaid': 'Votre clé fonctionne une fois la première facture payée.',
      'key.postpaid': 'Votre clé fonctionne dès l\u2019inscription\u00a0; la première facture se règle comme les suivantes.',
      'account': 'espace client',
      'contactUs': 'contactez-nous',
      'stat.providers': { one: 'fournisseur d\u2019IA connecté', other: 'fournisseurs d\u2019IA connectés' },
      'routing.title.fallback': 'Ordre de secours',
      'routing.text.fallback': 'Par défaut, chaque modèle essaie ses fournisseurs dans un ordre fixé et passe au suivant en cas d\u2019échec. Le champ {routing} d\u2019une requête peut demander le plus rapide ({latency}) ou le moins cher ({cost}).',
      'routing.title.lowest_latency': 'Routage au plus rapide',
      'routing.text.lowest_latency': 'Par défaut, chaque requête part vers le fournisseur dont la latence mesurée est la plus basse. Le champ {routing} d\u2019une requête peut demander l\u2019ordre fixé ({fallback}) ou le moins cher ({cost}).',
      'routing.title.lowest_cost': 'Routage au moins cher',
      'routing.text.lowest_cost': 'Par défaut, chaque requête part vers le fournisseur le moins cher pour ce modèle. Le champ {routing} d\u2019une requête peut demander l\u2019ordre fixé ({fallback}) ou le plus rapide ({latency}).',
      'signup.title': 'Créer mon compte',
      'signup.welcome': 'Bienvenue chez IAFactory',
      'signup.submit': 'Recevoir ma clé API',
      'signup.submitting': 'Création du compte\u2026',
      'sum.discount': 'Vous paierez {price} par mois pendant {months}, puis {base}.',
      'sum.noDiscount': 'Forfait {name}\u00a0: {price} par mois, hors réduction.',
      'sum.plain': 'Forfait {name}\u00a0: {price} par mois.',
      'code.checking': 'Vérification du code\u2026',
      'code.later': 'Impossible de vérifier le code pour l\u2019instant\u00a0; il sera vérifié à l\u2019envoi.',
      'code.tooMany': 'Trop de vérifications en peu de temps. Patientez quelques secondes\u00a0: le code sera vérifié à l\u2019envoi.',
      'code.invalid': 'Code promo invalide\u00a0: {msg}.',
      'code.ok': 'Réduction de {pct}\u00a0% !',
      'code.refused': 'Ce code promo n\u2019est pas valable.',
      'code.noPlaces': 'Il n\u2019y a plus de places pour {code}.',
      'err.emailRequired': 'Saisissez votre adresse e-mail.',
      'err.emailInvalid': 'Cette adresse e-mail n\u2019est pas valide. Vérifiez-la, par exemple nom@domaine.dz.',
      'err.emailTaken': 'Cette adresse e-mail est déjà utilisée\u00a0: un compte existe déjà. Si vous avez perdu votre clé, connectez-vous à votre {account} pour en créer une nouvelle.',
      'err.emailTakenContact': 'Cette adresse e-mail est déjà utilisée\u00a0: un compte existe déjà. Si vous avez perdu votre clé, connectez-vous à votre {account} pour en créer une nouvelle, ou {contact}.',
      'err.exhausted': 'Il n\u2019y a plus de places\u00a0: les {total} places de l\u2019offre {code} ont toutes été prises.',
      'err.exhaustedAll': 'Il n\u2019y a plus de places\u00a0: toutes les places de l\u2019offre {code} ont été prises.',
      'err.hint': ' Videz le champ «\u00a0Code promo\u00a0» pour vous inscrire au tarif normal.',
      'err.unknownCode': 'Ce code promo n\u2019existe pas. Vérifiez-le, ou videz le champ pour vous inscrire au tarif normal.',
      'err.codeUnusable': 'Ce code promo ne peut pas être utilisé.',
      'err.unknownPackage': 'Ce forfait n\u2019existe pas. Choisissez un forfait dans la liste.',
      'err.rateWait': 'Trop de tentatives. Patientez {secs} puis réessayez.',
      'err.rate': 'Trop de tentatives. Patientez un instant puis réessayez.',
      'err.inProgress': 'Votre inscription est déjà en cours de traitement. Patientez un instant puis réessayez.',
      'err.unavailable': 'Le service est momentanément indisponible. Réessayez dans quelques instants.',
      'err.server': 'Une erreur est survenue de notre côté. Réessayez dans quelques instants.',
      'err.withMessage': 'Inscription impossible\u00a0: {msg}.',
      'err.generic': 'Inscription impossible. Vérifiez les informations saisies.',
      'err.network': 'Impossible de joindre le serveur. Vérifiez votre connexion et réessayez.',
      'waitlist.emailInvalid': 'Saisissez une adresse e-mail valide, par exemple nom@domaine.dz.',
      'waitlist.consentMissing': 'Cochez la case pour accepter de recevoir nos e-mails sur ces places.',
      'waitlist.refused': 'Inscription impossible\u00a0: {msg}',
      'waitlist.generic': 'Inscription impossible. Vérifiez l\u2019adresse saisie.',
      'success.discount': 'Forfait {name}\u00a0: {price} par mois (\u2212{pct}\u00a0%) jusqu\u2019au {date}, puis {base}.',
      'success.plain': 'Forfait {name}\u00a0: {price} par mois.',
      'copy.ok': 'Clé copiée dans le presse-papiers.',
      'copy.fail': 'Copie automatique impossible\u00a0: la clé est sélectionnée, copiez-la avec Ctrl+C.',
      'footer.phone': 'Tél.\u00a0',
      'footer.rc': 'RC\u00a0',
      'footer.nif': 'NIF\u00a0',
    },
    ar: {
      'lang.switch': 'العربية',
      'currency': 'دج',
      'months': { zero: '{n} شهر', one: 'شهر واحد', two: 'شهرين', few: '{n} أشهر', many: '{n} شهرًا', other: '{n} شهر' },
      'days': { zero: '{n} يوم', one: 'يوم واحد', two: 'يومين', few: '{n} أيام', many: '{n} يومًا', other: '{n} يوم' },
      'seconds': { zero: '{n} ثانية', one: 'ثانية واحدة', two: 'ثانيتين', few: '{n} ثوانٍ', many: '{n} ثانية', other: '{n} ثانية' },
      'clients': { zero: 'لأوائل الزبائن', one: 'لأول زبون', two: 'لأول زبونين', few: 'لأول {n} زبائن', many: 'لأول {n} زبونًا', other: 'لأول {n} زبون' },
      'clientsTo': { zero: 'لأوائل الزبائن', one: 'لأول زبون', two: 'لأول زبونين', few: 'لأول {n} زبائن', many: 'لأول {n} زبونًا', other: 'لأول {n} زبون' },
      'promo.loading': 'جارٍ تحميل عدد الأماكن المتبقية…',
      'promo.unavailable': 'عدد الأماكن المتبقية غير متاح مؤقتًا.',
      'promo.generic': 'عرض الإطلاق: تخفيض لأوائل الزبائن.',
      'promo.closed': 'عرض الإطلاق لم يعد متاحًا.',
      'promo.normalPrice': 'تبقى الباقات متاحة بالسعر العادي.',
      'promo.upTo': 'عرض الإطلاق: تخفيض يصل إلى {pct}% لمدة {months}.',
      'promo.enterCode': 'أدخل الرمز {code} عند التسجيل.',
      'promo.openUpTo': 'عرض الإطلاق: تخفيض يصل إلى {pct}% لمدة {months} {clients}.',
      'promo.openGeneric': 'عرض الإطلاق: تخفيض {clients}.',
      'promo.over': { other: 'انتهى عرض الإطلاق: حُجزت كل الأماكن ({n}).' },
      'promo.overAll': 'انتهى عرض الإطلاق: حُجزت كل الأماكن.',
      'promo.full': { other: 'مكتمل: {n} من أصل {n}' },
      'promo.fullShort': 'مكتمل',
      'promo.taken': { other: 'المحجوز: {n} من أصل {total}' },
      'promo.strong': { zero: '{n} مكان', one: 'مكان واحد', two: 'مكانان', few: '{n} أماكن', many: '{n} مكانًا', other: '{n} مكان' },
      'promo.remaining': { one: 'بقي {strong} فقط من أصل {total}!', other: 'بقي {strong} فقط من أصل {total}' },
      'promo.none': 'لم يُحجز أي مكان بعد',
      'promo.filled': { zero: 'لم يُحجز أي مكان بعد', one: 'حُجز مكان واحد', two: 'حُجز مكانان', few: 'حُجزت {n} أماكن', many: 'حُجز {n} مكانًا', other: 'حُجز {n} مكان' },
      'tagline.starter': 'لاكتشاف الواجهة البرمجية وإطلاق مشروعك الأول.',
      'tagline.dev': 'للمطوّرين والتطبيقات قيد الإنتاج.',
      'tagline.business': 'للفرق والمنتجات ذات الحركة الكثيفة.',
      'tagline.premium': 'للأحجام الكبيرة والاستعمالات الحساسة.',
      'pkg.perMonth': '/ شهريًا',
      'pkg.tokens': 'الرموز (tokens) شهريًا: {n}',
      'pkg.rpm': 'الطلبات في الدقيقة: {n}',
      'pkg.best': 'أفضل تخفيض: {pct}%',
      'pkg.wasLabel': 'السعر العادي: ',
      'pkg.note': 'تخفيض {pct}% لمدة {months} مع {code}',
      'pkg.normal': 'السعر العادي',
      'pkg.over': 'انتهى عرض {code}: السعر العادي',
      'pkg.choose': 'اختر {name} — {price} شهريًا',
      'pkg.option': '{name} — {price} شهريًا',
      'pkg.lead': 'الأسعار شهرية بالدينار الجزائري (دج).',
      'pkg.leadCode': 'الأسعار شهرية بالدينار الجزائري (دج). مع الرمز {code}، يسري التخفيض لمدة {months} ابتداءً من التسجيل.',
      'faq.range1': '{pct}%',
      'faq.range': 'من {lo}% إلى {hi}% حسب الباقة',
      'faq.launch': 'هذا الرمز مخصّص {clientsTo}. أدخله عند التسجيل: يسري تخفيض باقتك ({range}) لمدة {months} ابتداءً من تاريخ التسجيل. استعمال واحد لكل عنوان بريد إلكتروني.',
      'faq.models': 'نماذج {makers}، حسب باقتك. تعطيك {endpoint} القائمة المحدَّثة الخاصة بمفتاحك.',
      'faq.billing': 'تصدر في بداية كل شهر اشتراك فاتورة بالدينار، مرقّمة وباسمنا، تُسدَّد في أجل {due}{methods}. {tax} {key} إذا لم تُسدَّد بعد {grace} من تاريخ الاستحقاق، يُعلَّق الوصول إلى غاية التسديد. تجد فواتيرك في {account}.',
      'faq.methods': '، {list}',
      'pay.card': 'ببطاقة الذهبية أو CIB',
      'pay.bank': 'بتحويل بنكي',
      'pay.ccp': 'بتحويل إلى الحساب البريدي الجاري (CCP)',
      'pay.baridimob': 'عبر BaridiMob',
      'tax.incl': 'الأسعار المعروضة تشمل الرسم على القيمة المضافة ({rate}%).',
      'tax.excl': 'الأسعار المعروضة دون احتساب الرسم على القيمة المضافة ({rate}%) الذي يُضاف إليها.',
      'tax.none': 'لا يُفوتَر أي رسم على القيمة المضافة.',
      'key.prepaid': 'يعمل مفتاحك بعد تسديد الفاتورة الأولى.',
      'key.postpaid': 'يعمل مفتاحك منذ التسجيل، وتُسدَّد الفاتورة الأولى مثل الفواتير التالية.',
      'account': 'فضاء الزبون (بالفرنسية)',
      'contactUs': 'راسلنا',
      'stat.providers': { zero: 'مزوّد ذكاء اصطناعي متصل', one: 'مزوّد ذكاء اصطناعي متصل', two: 'مزوّدا ذكاء اصطناعي متصلان', few: 'مزوّدي ذكاء اصطناعي متصلين', many: 'مزوّد ذكاء اصطناعي متصلًا', other: 'مزوّد ذكاء اصطناعي متصل' },
      'routing.title.fallback': 'ترتيب احتياطي',
      'routing.text.fallback': 'افتراضيًا، يجرّب كل نموذج مزوّديه بترتيب ثابت وينتقل إلى التالي عند الفشل. يمكن لحقل {routing} في الطلب أن يطلب الأسرع ({latency}) أو الأرخص ({cost}).',
      'routing.title.lowest_latency': 'التوجيه إلى الأسرع',
      'routing.text.lowest_latency': 'افتراضيًا، يذهب كل طلب إلى المزوّد صاحب أدنى زمن استجابة مُقاس. يمكن لحقل {routing} في الطلب أن يطلب الترتيب الثابت ({fallback}) أو الأرخص ({cost}).',
      'routing.title.lowest_cost': 'التوجيه إلى الأرخص',
      'routing.text.lowest_cost': 'افتراضيًا، يذهب كل طلب إلى أرخص مزوّد لهذا النموذج. يمكن لحقل {routing} في الطلب أن يطلب الترتيب الثابت ({fallback}) أو الأسرع ({latency}).',
      'signup.title': 'أنشئ حسابي',
      'signup.welcome': 'مرحبًا بك في IAFactory',
      'signup.submit': 'احصل على مفتاح API',
      'signup.submitting': 'جارٍ إنشاء الحساب…',
      'sum.discount': 'ستدفع {price} شهريًا لمدة {months}، ثم {base}.',
      'sum.noDiscount': 'باقة {name}: {price} شهريًا، دون تخفيض.',
      'sum.plain': 'باقة {name}: {price} شهريًا.',
      'code.checking': 'جارٍ التحقق من الرمز…',
      'code.later': 'تعذّر التحقق من الرمز حاليًا، وسيُتحقَّق منه عند الإرسال.',
      'code.tooMany': 'عمليات تحقق كثيرة في وقت قصير. انتظر بضع ثوانٍ: سيُتحقَّق من الرمز عند الإرسال.',
      'code.invalid': 'رمز التخفيض غير صالح.',
      'code.ok': 'تخفيض {pct}% لمدة {months}!',
      'code.refused': 'رمز التخفيض هذا غير صالح.',
      'code.noPlaces': 'لم تعد هناك أماكن متاحة لـ {code}.',
      'refusal.unknown': 'هذا الرمز غير موجود.',
      'refusal.inactive': 'هذا الرمز غير مفعّل.',
      'refusal.not_yet_valid': 'هذا الرمز غير صالح بعد.',
      'refusal.expired': 'انتهت صلاحية هذا الرمز.',
      'refusal.exhausted': 'حُجزت كل أماكن هذا الرمز.',
      'refusal.not_for_package': 'هذا الرمز لا ينطبق على هذه الباقة.',
      'err.emailRequired': 'أدخل عنوان بريدك الإلكتروني.',
      'err.emailInvalid': 'عنوان البريد الإلكتروني هذا غير صالح. تحقّق منه، مثلًا name@domaine.dz.',
      'err.emailTaken': 'عنوان البريد هذا مستعمل: يوجد حساب بهذا العنوان. إذا فقدت مفتاحك، سجّل الدخول إلى {account} لإنشاء مفتاح جديد.',
      'err.emailTakenContact': 'عنوان البريد هذا مستعمل: يوجد حساب بهذا العنوان. إذا فقدت مفتاحك، سجّل الدخول إلى {account} لإنشاء مفتاح جديد، أو {contact}.',
      'err.exhausted': 'لم تعد هناك أماكن: حُجزت كل أماكن عرض {code} ({total}).',
      'err.exhaustedAll': 'لم تعد هناك أماكن: حُجزت كل أماكن عرض {code}.',
      'err.hint': ' امسح خانة «رمز التخفيض» للتسجيل بالسعر العادي.',
      'err.unknownCode': 'رمز التخفيض هذا غير موجود. تحقّق منه، أو امسح الخانة للتسجيل بالسعر العادي.',
      'err.codeUnusable': 'لا يمكن استعمال رمز التخفيض هذا.',
      'err.unknownPackage': 'هذه الباقة غير موجودة. اختر باقة من القائمة.',
      'err.rateWait': 'محاولات كثيرة. انتظر {secs} ثم أعد المحاولة.',
      'err.rate': 'محاولات كثيرة. انتظر قليلًا ثم أعد المحاولة.',
      'err.inProgress': 'تسجيلك قيد المعالجة. انتظر قليلًا ثم أعد المحاولة.',
      'err.unavailable': 'الخدمة غير متاحة مؤقتًا. أعد المحاولة بعد لحظات.',
      'err.server': 'حدث خطأ من جهتنا. أعد المحاولة بعد لحظات.',
      'err.withMessage': 'تعذّر التسجيل. تحقّق من المعلومات المدخلة.',
      'err.generic': 'تعذّر التسجيل. تحقّق من المعلومات المدخلة.',
      'err.network': 'تعذّر الاتصال بالخادم. تحقّق من اتصالك وأعد المحاولة.',
      'waitlist.emailInvalid': 'أدخل عنوان بريد إلكتروني صالحًا، مثلًا name@domaine.dz.',
      'waitlist.consentMissing': 'ضع علامة في الخانة لتقبل تلقي رسائلنا بشأن هذه الأماكن.',
      'waitlist.refused': 'تعذّر التسجيل: {msg}',
      'waitlist.generic': 'تعذّر التسجيل. تحقّق من العنوان المُدخل.',
      'success.discount': 'باقة {name}: {price} شهريًا (تخفيض {pct}%) حتى {date}، ثم {base}.',
      'success.plain': 'باقة {name}: {price} شهريًا.',
      'copy.ok': 'تم نسخ المفتاح إلى الحافظة.',
      'copy.fail': 'تعذّر النسخ التلقائي: المفتاح محدَّد، انسخه بالضغط على Ctrl+C.',
      'footer.phone': 'الهاتف: ',
      'footer.rc': 'السجل التجاري: ',
      'footer.nif': 'رقم التعريف الجبائي: ',

      // The page's static text (French in index.html).
      'waitlist.title': 'أعلِموني إذا عادت الأماكن',
      'waitlist.lead': 'اترك عنوانك: سنراسلك إذا توفرت أماكن في عرض الإطلاق. تصلك أولًا رسالة تأكيد؛ ودون تأكيد لن نراسلك.',
      'waitlist.email': 'عنوان البريد الإلكتروني',
      'waitlist.consent': 'أوافق على تلقي رسالة التأكيد، ثم رسالة إذا عادت الأماكن أو عند انتهاء العرض. إلغاء الاشتراك بنقرة واحدة في كل رسالة.',
      'waitlist.submit': 'سجّلني في قائمة الانتظار',
      'meta.title': 'باقات API — IAFactory',
      'skip': 'الانتقال إلى المحتوى',
      'brand.label': 'IAFactory، أعلى الصفحة',
      'nav.label': 'التنقل الرئيسي',
      'nav.packages': 'الباقات',
      'nav.features': 'المزايا',
      'nav.faq': 'الأسئلة الشائعة',
      'promo.progressLabel': 'الأماكن المحجوزة من عرض LAUNCH30',
      'hero.eyebrow': 'واجهة برمجية للذكاء الاصطناعي، تُدفع بالدينار',
      'hero.title': 'كل نماذج الذكاء الاصطناعي الكبرى بمفتاح API واحد',
      'hero.lead': 'نقطة وصول متوافقة مع OpenAI تنقل طلباتك إلى مزوّدي الذكاء الاصطناعي المتصلين بالمنصة، مع باقة شهرية بالدينار وحصة استهلاك واضحة.',
      'hero.see': 'اطّلع على الباقات',
      'hero.get': 'احصل على مفتاح API',
      'stat.latency': 'الزمن الوسيط للاستجابة في آخر الطلبات',
      'packages.title': 'باقاتنا الشهرية',
      'features.title': 'لماذا IAFactory',
      'f.compat.title': 'متوافق مع OpenAI',
      'f.compat.text': 'احتفظ بشيفرتك: غيّر فقط العنوان الأساسي والمفتاح. تعمل مكتبات OpenAI وLangChain أو مجرد أمر <code>curl</code> كما هي.',
      'f.failover.title': 'انتقال تلقائي',
      'f.failover.text': 'إذا كان أحد المزوّدين بطيئًا أو معطّلًا، ينتقل الطلب إلى المزوّد التالي، مع إعادة المحاولة وقاطع دارة لكل مزوّد.',
      'f.routing.title': 'التوجيه حسب النموذج',
      'f.routing.text': 'لكل نموذج، تختار سياسة التوجيه المزوّد: الترتيب الاحتياطي أو أدنى زمن استجابة أو أدنى تكلفة، ويمكن لحقل <code>routing</code> في الطلب أن يغيّرها.',
      'f.quota.title': 'حصة واضحة',
      'f.quota.text': 'عدد محدد من الرموز (tokens) شهريًا ومن الطلبات في الدقيقة، تتابعه مباشرة عبر <code>GET /v1/usage</code>. لا مفاجآت في الفاتورة.',
      'f.key.title': 'مفتاح محمي',
      'f.key.text': 'يُعرض مفتاحك مرة واحدة فقط ولا نحتفظ إلا ببصمته. ويمكن إلغاء المفتاح المكشوف فورًا.',
      'f.dzd.title': 'الدفع بالدينار',
      'f.dzd.text': 'باقات شهرية بسعر ثابت بالدينار الجزائري: لا فواتير بالدولار ولا مفاجآت بسبب سعر الصرف.',
      'faq.title': 'الأسئلة الشائعة',
      'faq.q.launch': 'كيف يعمل الرمز LAUNCH30؟',
      'faq.a.launch': 'هذا الرمز مخصّص لأوائل الزبائن في حدود الأماكن المعروضة أعلى الصفحة. أدخله عند التسجيل: يسري تخفيض باقتك، المبيَّن على كل باقة، لمدة محدودة ابتداءً من تاريخ التسجيل. استعمال واحد لكل عنوان بريد إلكتروني.',
      'faq.q.end': 'ماذا يحدث عند انتهاء التخفيض؟',
      'faq.a.end': 'تستمر باقتك بالسعر العادي المعروض في هذه الصفحة. يُبلَّغ لك تاريخ انتهاء التخفيض منذ التسجيل، وتذكّرك رسالة بالبريد الإلكتروني بالسعر الجديد قبل انتهائه بـ <span data-site="terms.discount_notice_days">15</span> يومًا، كما يعرضه فضاء الزبون.',
      'faq.q.models': 'ما النماذج التي يمكنني استعمالها؟',
      'faq.a.models': 'تعطيك <code>GET /v1/models</code> بمفتاحك القائمة المحدَّثة للنماذج المتاحة.',
      'faq.q.code': 'هل عليّ تعديل شيفرتي الحالية؟',
      'faq.a.code': 'لا، إذا كنت تستعمل واجهة OpenAI: استبدل العنوان الأساسي بعنوان IAFactory ومفتاحك بالمفتاح <code>iaf_…</code>. وضع البث (<code>"stream": true</code>) مدعوم.',
      'faq.q.quota': 'ماذا يحدث إذا تجاوزت حصتي؟',
      'faq.a.quota': 'تتلقى الطلبات التي تتجاوز الحصة الشهرية من الرموز أو الحد في الدقيقة ردًا واضحًا برمز HTTP 429. تتابع استهلاكك في <a href="/compte/" hreflang="fr">فضاء الزبون</a> (بالفرنسية)، ويمكنك فيه الانتقال إلى باقة أعلى: يسري التغيير فورًا.',
      'faq.q.lost': 'فقدت مفتاح API، ماذا أفعل؟',
      'faq.a.lost': 'حفاظًا على أمنك، لا يُعرض المفتاح إلا مرة واحدة ولا يُخزَّن بشكل مقروء: لا يمكننا استرجاعه. سجّل الدخول إلى <a href="/compte/" hreflang="fr">فضاء الزبون</a> (بالفرنسية) بعنوان بريد حسابك (يُرسَل إليك رابط دخول)، ثم ألغِ المفتاح القديم وأنشئ مفتاحًا جديدًا.',
      'faq.q.billing': 'كيف تتم الفوترة؟',
      'faq.a.billing': 'تصدر كل شهر فاتورة بالدينار تجدها وتسدّدها في <a href="/compte/" hreflang="fr">فضاء الزبون</a> (بالفرنسية).',
      'faq.q.contact': 'كيف أتواصل معكم؟',
      'faq.a.contact': 'راسلنا على <a data-site-mailto="seller.email" dir="ltr"></a>. <span data-site-if="seller.phone">أو اتصل بنا على <a data-site-tel="seller.phone" dir="ltr"></a>.</span>',
      'cta.title': 'هل أنت مستعد لإدماج الذكاء الاصطناعي في منتجك؟',
      'cta.text': 'سجّل في دقيقة واحدة واحصل على مفتاح API فورًا.',
      'cta.button': 'أنشئ حسابي',
      'footer.legalNav': 'معلومات قانونية',
      'footer.legal': 'الإشعارات القانونية (بالفرنسية)',
      'footer.terms': 'الشروط العامة للبيع (بالفرنسية)',
      'footer.privacy': 'سياسة الخصوصية (بالفرنسية)',
      'footer.note': 'الأسعار بالدينار الجزائري، شهريًا.',
      'dialog.close': 'إغلاق',
      'form.email': 'عنوان البريد الإلكتروني',
      'form.package': 'الباقة',
      'form.code': 'رمز التخفيض <span class="optional">(اختياري)</span>',
      'form.fineprint': 'بتسجيلك، فإنك تقبل <a href="/api-packages/cgv/" hreflang="fr">الشروط العامة للبيع</a> (بالفرنسية)، وتُعالَج بياناتك وفق <a href="/api-packages/confidentialite/" hreflang="fr">سياسة الخصوصية</a> (بالفرنسية). تسجيل واحد لكل عنوان بريد إلكتروني، وتصلك رسالة التأكيد بالعربية.',
      'success.title': 'تم إنشاء حسابك!',
      'success.keyLabel': 'مفتاح API الخاص بك',
      'success.copy': 'نسخ',
      'success.warning': '<strong>لن يُعرض هذا المفتاح مرة أخرى أبدًا.</strong> انسخه الآن واحفظه في مكان آمن.',
      'success.quick': 'بداية سريعة',
      'success.curl': 'باستعمال curl',
      'success.python': 'بلغة Python، باستعمال مكتبة <code>openai</code>',
      'success.close': 'نسخت مفتاحي، إغلاق',
    },
  };

  const source = new WeakMap(); // element → its French HTML and attributes, as the page wrote them

  function valid(l) { return Object.prototype.hasOwnProperty.call(META, l); }

  function initial() {
    let fromUrl = null;
    try { fromUrl = new URLSearchParams(window.location.search).get('lang'); } catch (_) { fromUrl = null; }
    if (fromUrl && valid(fromUrl)) {
      remember(fromUrl);
      return fromUrl;
    }
    try {
      const stored = localStorage.getItem(STORE);
      if (stored && valid(stored)) return stored;
    } catch (_) { /* storage disabled: French */ }
    return 'fr';
  }

  function remember(l) {
    try {
      if (l === 'fr') localStorage.removeItem(STORE); else localStorage.setItem(STORE, l);
    } catch (_) { /* storage disabled: the choice lasts for this page only */ }
  }

  let lang = initial();

  function setDocument() {
    const root = document.documentElement;
    root.lang = lang;
    root.dir = META[lang].dir;
  }
  setDocument();

  function entry(key) {
    const own = DICT[lang][key];
    return own !== undefined ? own : DICT.fr[key];
  }

  const numberFormats = {};
  function number(n) {
    const loc = META[lang].locale;
    numberFormats[loc] = numberFormats[loc] || new Intl.NumberFormat(loc);
    return numberFormats[loc].format(n);
  }

  function fill(s, params) {
    return s.replace(/\{(\w+)\}/g, (m, name) => (params && params[name] !== undefined ? String(params[name]) : m));
  }

  /** The string `key` in the current language, with `{name}` replaced from `params`. */
  function t(key, params) {
    const s = entry(key);
    if (typeof s !== 'string') return key;
    return fill(s, params);
  }

  /** The form of `key` for the count `n` (`{n}` is the formatted count). */
  function plural(key, n, params) {
    const forms = entry(key);
    if (!forms || typeof forms !== 'object') return key;
    let cat = 'other';
    try { cat = new Intl.PluralRules(META[lang].locale).select(n); } catch (_) { cat = 'other'; }
    const s = forms[cat] !== undefined ? forms[cat] : forms.other;
    return fill(s, Object.assign({ n: number(n) }, params || {}));
  }

  /**
   * `text` (from `t` or `plural`) as nodes for `append`/`replaceChildren`, with each `{name}` left
   * in it replaced by the node `nodes[name]` (a link, a <strong>…); the rest stays text.
   */
  function nodes(text, parts) {
    const out = [];
    let last = 0;
    text.replace(/\{(\w+)\}/g, (m, name, at) => {
      if (!parts || !(name in parts)) return m;
      if (at > last) out.push(text.slice(last, at));
      const part = parts[name];
      if (part !== null && part !== undefined) out.push(part);
      last = at + m.length;
      return m;
    });
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  /** Puts the current language's text into the `data-i18n` elements under `root`. */
  function apply(root) {
    const scope = root || document;
    for (const el of scope.querySelectorAll('[data-i18n], [data-i18n-attr]')) {
      let src = source.get(el);
      if (!src) {
        src = { html: el.innerHTML, attrs: {} };
        for (const pair of (el.dataset.i18nAttr || '').split(';')) {
          const name = pair.split(':')[0].trim();
          if (name) src.attrs[name] = el.getAttribute(name);
        }
        source.set(el, src);
      }
      const key = el.dataset.i18n;
      if (key) {
        // Our own constant strings: they may hold markup (<code>, <a>), never visitor data.
        const html = lang === 'fr' ? src.html : DICT[lang][key];
        if (typeof html === 'string' && el.innerHTML !== html) el.innerHTML = html;
      }
      for (const pair of (el.dataset.i18nAttr || '').split(';')) {
        const [name, attrKey] = pair.split(':').map((x) => (x || '').trim());
        if (!name || !attrKey) continue;
        const value = lang === 'fr' ? src.attrs[name] : DICT[lang][attrKey];
        if (typeof value === 'string') el.setAttribute(name, value);
      }
    }
    const sw = document.getElementById('lang-switch');
    if (sw) {
      const other = lang === 'fr' ? 'ar' : 'fr';
      sw.textContent = META[other].name;
      sw.lang = other;
      sw.dir = META[other].dir;
      sw.dataset.lang = other;
    }
    document.dispatchEvent(new CustomEvent('iaf:applied'));
  }

  /** Switches the page to `l` and remembers the choice. */
  function set(l) {
    if (!valid(l)) return;
    remember(l);
    if (l === lang) return;
    lang = l;
    setDocument();
    apply();
    document.dispatchEvent(new CustomEvent('iaf:lang', { detail: { lang } }));
  }

  return {
    get lang() { return lang; },
    get locale() { return META[lang].locale; },
    t, plural, nodes, number, apply, set,
  };
})();
