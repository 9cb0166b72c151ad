"""What BM25 leaves out and what it folds together: stop words and British spellings.

Without stop words "how do I fix a flat tyre" ranks whichever passage says "how", "do" and
"a" most often. The IDF alone cannot fix that within one request: among twenty candidates a
word like "how" is rare enough to weigh as much as "tyre".

The stop words cover the languages of the demo corpus and its neighbours: English, German,
Spanish, French and Chinese. Each is the usual short list of articles, pronouns,
prepositions, conjunctions, auxiliaries and question words, minus any word that is also a
content word in another of these languages (French "pour" and "car", German "hat", "war",
"man", "die" and "dir"), since one list serves every language at once. Single letters that
command lines use as options (``python -m``, ``pip install -e``) are kept, though they are
also elisions (French "l'", "m'") or conjunctions (Spanish "e"). Chinese entries are the
function words that the tokenizer's bigrams reproduce exactly (如何, 什么, 我们...) and the
one-character particles that stand alone between punctuation. Japanese and Korean get none:
their particles fuse into the neighbouring bigrams, where no list can reach them.

British spellings are folded into American ones ("tyre" into "tire"), so a query written on
either side of the Atlantic meets a text written on the other: a lexical scorer cannot
know they are one word, a model can.
"""

from __future__ import annotations

__all__ = ["SPELLING_VARIANTS", "STOP_WORDS"]

_ENGLISH = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its
itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were
what when where which while who whom why will with would you your yours yourself yourselves
s t ll re ve don won isn aren doesn didn shouldn wouldn couldn
"""

_GERMAN = """
aber alle allem allen aller alles als also am an andere anderen anderer anderes auch auf aus
bei bin bis bist da damit dann das dass dein deine dem den denn der des dich doch dort
du durch ein eine einem einen einer eines er es euch euer für habe haben hast hatte hatten ich
ihm ihn ihnen ihr ihre im in ist ja jede jedem jeden jeder jedes kann kannst können könnte mein
meine mich mir mit muss musst nach nicht nichts noch nun nur ob oder ohne sehr sein seine sich
sie sind so soll sollte über um und uns unser unter vom von vor wann warum was weil welche
welcher welches wenn wer werde werden wie wieder wir wird wo wollen zu zum zur zwischen
"""

_SPANISH = """
a al algo algunas algunos ante antes como cómo con contra cual cuál cuales cuáles cuando cuándo
de del desde donde dónde durante el él ella ellas ellos en entre era eres es esa esas ese eso
esos esta está estamos están estar estas este esto estos estoy fue fueron ha han has hay he
hemos la las le les lo los me mi mí mis muy más mas ni no nos nosotros nuestra nuestro o os
otra otro para pero poco por porque que qué quien quién quienes se sea ser si sí sin sobre
son soy su sus también te tengo ti tiene todo todos tu tú tus un una uno unos usted vosotros
y ya yo
"""

_FRENCH = """
à au aux avec avez avoir avons ce ceci cela ces cet cette comment dans de des donc du elle
elles en es est et étaient était été être eu eux il ils je la le les leur leurs lui ma mais
me mes moi mon même n ne ni nos notre nous on ont ou où par pas peut pourquoi qu quand que
quel quelle quelles quels qui sa sans se ses si son sont sous suis sur ta te tes toi ton tous
tout toute toutes très tu un une vos votre vous y ça j
"""

_CHINESE = """
的 了 是 在 和 与 或 也 就 都 而 及 着 把 被 让 给 向 从 对 吗 呢 吧 啊 我 你 他 她 它 这 那
我们 你们 他们 她们 它们 这个 那个 这些 那些 这样 那样 这里 那里 什么 怎么 怎样 如何 为什
为何 哪些 哪个 哪里 一个 可以 应该 是否 还是 或者 但是 因为 所以 如果 就是 已经 以及 并且
而且 然后 自己 多少
"""

STOP_WORDS: frozenset[str] = frozenset(
    word for text in (_ENGLISH, _GERMAN, _SPANISH, _FRENCH, _CHINESE) for word in text.split()
)
"""The stop words, case-folded as :func:`~rerank_integrations.server.tokenize` makes them."""

_BRITISH_AMERICAN = """
tyre tire tyres tires colour color colours colors coloured colored flavour flavor
flavours flavors flavoured flavored odour odor odours odors favourite favorite behaviour
behavior litre liter litres liters metre meter metres meters centimetre centimeter
centimetres centimeters millimetre millimeter millimetres millimeters kilometre kilometer
kilometres kilometers centre center centres centers fibre fiber fibres fibers grey gray
aluminium aluminum mould mold moulds molds mouldy moldy savoury savory fertiliser
fertilizer fertilisers fertilizers fertilise fertilize caramelise caramelize caramelised
caramelized optimise optimize optimised optimized organise organize organised organized
analyse analyze analysed analyzed catalogue catalog licence license programme program
practise practice
"""

_PAIRS = _BRITISH_AMERICAN.split()
SPELLING_VARIANTS: dict[str, str] = dict(zip(_PAIRS[::2], _PAIRS[1::2], strict=True))
"""British spellings and the American ones they are scored as."""
