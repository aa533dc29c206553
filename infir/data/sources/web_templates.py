"""Sentence templates for the raw crawl's ``off_topic`` pages: fluent general-web English.

Most of a real web crawl is well-formed text about everyday things (recipes, travel, sport,
shopping, local news, celebrities, gardens, houses): heuristic filters keep it, a
reasoning-oriented recall classifier should not. ``raw_crawl.general_web_page`` builds pages from
these templates.

Templates are written one per line of a ``_templates`` block (a further-indented line continues
the one above). Syntax: ``{slot}`` is a filler drawn from the topic's ``slots`` (else ``COMMON_SLOTS``);
slots named in ``Topic.fixed`` are drawn once per page so that a page stays about one dish,
match or house. ``[a|b|c]`` picks one alternative (an empty one makes a word optional).
Alternatives are expanded before slots, so an alternative may hold a slot. Fillers are plain
text (no templates). No template contains braces, '#', "...", "cookie" or policy phrases,
which C4/Gopher rules would penalise for reasons unrelated to the topic.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Topic:
    """One kind of general-web page: titles, body sentences and slot fillers."""

    titles: tuple[str, ...]
    sentences: tuple[str, ...]
    slots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fixed: tuple[str, ...] = ()

    def fillers(self, slot: str) -> tuple[str, ...]:
        """The topic's own fillers for ``slot``, else the common ones (names, weekdays, towns...)."""
        return self.slots.get(slot) or COMMON_SLOTS[slot]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _items(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(";"))


def _templates(block: str) -> tuple[str, ...]:
    """One template per line of the (dedented) block; a further-indented line continues the one above."""
    return tuple(re.sub(r"\n[ \t]+", " ", textwrap.dedent(block).strip()).splitlines())


COMMON_SLOTS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "name": _words("Maria James Priya Tom Hannah Diego Aisha Ben Claire Omar Lucy Grace Ethan Sofia Liam Nora "
                   "Kevin Yuki Rachel Sam Fatima Owen Chloe Marcus Elena Jack Mei Daniel Ruth Andre Imogen Felix"),
    "surname": _words("Walker Patel Okafor Brennan Novak Lindqvist Moreau Castillo Hughes Tanaka Fischer "
                      "Doyle Kowalski Mendes Harper Osei Gallagher Whitfield Romano Sato Ellison Quinn Barker"),
    "weekday": _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday"),
    "month": _words("January February March April May June July August September October November December"),
    "season": _words("spring summer autumn winter"),
    "town": _items("Millbrook; Ashford; Cedar Falls; Port Alden; Riverton; Kingsley; Brookhaven; Elmstead; "
                   "Harrowgate; Westfield; Oakridge; Fairhaven; Lakeside; Stonebridge; Maple Grove; Hollis; "
                   "Northam; Bexley; Crestwood; Willowby"),
    "friend": _items("my sister; my brother; my neighbour; an old friend; my partner; my cousin; a colleague; "
                     "my best friend; my flatmate; a friend from school"),
    "pleased": _items("delighted; pleasantly surprised; thrilled; quietly impressed; very happy; relieved"),
})

CLOSING = _templates("""
    Thanks for reading, and [let me know|tell me] [what you think|how you get on] in the comments below.
    [If you enjoyed this post|If this was useful], [please share it with|pass it on to] [a friend|anyone who might
        like it].
    I will be back [next week|next month|soon] with [another update|more stories|a follow-up post].
    [As always|Once again], [thank you|a big thank you] to everyone who [wrote in|sent messages|got in touch].
    Have you [tried something similar|been through the same thing]? [I would love to hear about it|Drop me a line
        and tell me about it].
    [Until next time|See you soon], [take care|look after yourselves] and enjoy the rest of your {weekday}.
""")

RECIPE = Topic(
    titles=_templates("""
        The {dish} recipe [my family asks for every week|I make on repeat|that never lets me down]
        [Easy|Simple|Cosy] {dish} for {occasion}
        How [I finally perfected|to make a really good] {dish}
        {relative}'s {dish}, [written down at last|the way it should be|with a few small changes]
    """),
    fixed=("dish", "relative"),
    slots={
        "dish": _items("lemon chicken; mushroom risotto; beef stew; banana bread; vegetable lasagne; shepherd's pie; "
                       "chicken curry; apple crumble; tomato soup; fish tacos; pumpkin pie; carrot cake; lentil "
                       "soup; pulled pork; blueberry muffins; spinach quiche; minestrone; chilli con carne; roast "
                       "chicken; plum cake"),
        "relative": _items("my grandmother; my mother; my aunt Rose; my father; my uncle Joe; my mother-in-law; "
                           "my old flatmate; my grandfather"),
        "herb": _words("basil thyme rosemary parsley oregano coriander dill sage chives mint"),
        "veg": _items("onions; carrots; garlic; peppers; courgettes; leeks; celery; potatoes; mushrooms; "
                      "spinach; sweet potatoes; shallots"),
        "pantry": _items("olive oil; butter; brown sugar; honey; soy sauce; sea salt; black pepper; plain flour; "
                         "chicken stock; double cream; lemon juice; smoked paprika; ground cumin; cinnamon"),
        "minutes": _words("ten fifteen twenty twenty-five thirty forty forty-five"),
        "cookware": _items("a heavy pan; a cast iron skillet; a large pot; a baking dish; a wide saucepan; "
                           "the slow cooker; a roasting tin; a deep frying pan"),
        "texture": _words("soft tender moist fluffy creamy silky juicy"),
        "occasion": _items("a busy weeknight; Sunday lunch; a birthday dinner; a picnic; a cold evening; family "
                           "gatherings; a potluck; lazy weekends"),
        "side": _items("crusty bread; a green salad; steamed rice; buttery mash; roasted vegetables; a dollop "
                       "of yoghurt; garlic bread; fresh pasta"),
    },
    sentences=_templates("""
        This {dish} has been a favourite in our house [for years|since the kids were small|ever since {relative}
            first made it].
        I first [tasted|ate] it at {relative}'s kitchen table [on a rainy {weekday}|one {season} afternoon|during a
            long visit in {month}].
        Start by [warming|heating] a [little|generous splash of] [olive oil|butter] in {cookware} over
            [medium|low|gentle] heat.
        Add the {veg} and [cook|soften|sweat] them for about {minutes} minutes, [until they smell sweet|until they
            turn soft|stirring now and then].
        Season [generously|lightly|carefully] with {pantry} and [scatter over|stir in] a handful of fresh {herb}
            [just before serving|at the very end|once the heat is off].
        [Honestly|To be fair], the [secret|trick|magic] is patience, because rushing this [step|stage] leaves the
            flavour flat.
        We [usually|always|often] serve it with {side}, [though|but] [plain rice|a jacket potato|a simple salad]
            works [just as well|nicely too].
        [My|Our] kids [call it|have nicknamed it] the [golden|happy|cosy] dinner, which [makes me laugh|says it
            all|I take as a compliment].
        [Leftovers|Any leftovers] keep [well|happily] in the fridge for [two|three|a couple of] days and taste [even
            better|richer] the next day.
        If [your oven runs hot|you are short on time], [check it|take a look] after {minutes} minutes rather than
            waiting [the full time|until the end].
        You want the top to be [golden|crisp] and the middle to stay {texture}, [which takes a little practice|so
            keep an eye on it].
        I [tried|tested] this [three|four|several] times [before I was happy with it|last {month}|over one long
            weekend] and [took notes each time|changed one thing at a time].
        {relative} never [measured|weighed] anything, so [these amounts are my best guess|I had to watch closely and
            write things down].
        [Feel free to|You can easily] swap the {veg} for {veg} if that is what you have [in the fridge|to hand].
        [A squeeze of|Some] lemon [at the end|right before serving] [lifts everything|brightens the whole dish].
        [This is|It makes] a [forgiving|relaxed|friendly] recipe for {occasion}, [and|so] [nobody minds if it looks
            rustic|it rarely goes wrong].
        [Do not|Try not to] [skip|rush] the resting time, because [it lets the flavours settle|everything firms up
            nicely as it cools].
        [The smell|The scent] that [fills the kitchen|drifts through the house] [is half the fun|brings everyone to
            the table before you call them].
        [Last|This past] {weekday} I [made a double batch|doubled the recipe] and [froze half|gave some to
            {friend}], [which was a good call|and it vanished quickly].
        If you [like a bit of heat|prefer things spicy], [add|stir in] a pinch of [chilli flakes|cayenne] with the
            {veg}.
        [I know|I realise] some [readers|people] [prefer|like] to use {pantry} [instead|here], and [that works too|I
            have done that as well].
        [Once|When] everything is [bubbling|simmering gently], [turn the heat down|lower the heat] and [let it
            cook|leave it alone] for [a while|another {minutes} minutes].
        [Our neighbours|My friends] [asked for|begged for] the recipe [after a dinner party|at a barbecue|when they
            came over in {month}], so here it [finally|at last] is.
        [Serve it|Bring it to the table] [warm|hot|straight from the pan] with [a sprinkle of|extra] {herb} and
            {side}.
        [For a lighter version|If you want it lighter], [use less|cut back on the] {pantry} and [add more|bulk it up
            with] {veg}.
        [Every|Each] time I make it I think of {relative} [humming|singing] [in the kitchen|by the stove] on [Sunday
            mornings|cold evenings].
        [There is nothing|Nothing is] [fancy|complicated] about it, [and that is exactly why I love it|but it always
            disappears].
        [Cooking in|Using] {cookware} [makes a real difference|helps a lot] [here|with this one], since [it holds
            the heat evenly|nothing catches on the bottom].
        [Taste as you go|Keep tasting], because [every batch of|different brands of] {pantry} [is slightly
            different|can change the balance].
        [My partner|My husband|My wife] [claims|swears] [this is|it is] the best {dish} [in the county|they have
            ever had], [which is very kind|though they may be biased].
        [It also|This also] [travels well|packs nicely] for {occasion}, [wrapped in foil|in a sealed tub].
        [The first time|My first attempt] [went badly|was a disaster], [mostly because|largely because] I [forgot
            the salt|burnt the {veg}|used the wrong pan].
        [Children|Little ones] [can help|love helping] with [the stirring|the mixing|sprinkling the {herb}], [which
            keeps them busy|so it is a nice family job].
        [The recipe|This version] [feeds|serves] [four hungry people|six at a push|a small crowd] [with
            seconds|comfortably].
    """),
)

TRAVEL = Topic(
    titles=_templates("""
        [Three|Four|Five] days in {city}: [what we loved|our honest guide|the highlights]
        [A slow weekend|Our first trip] in {city}
        [Why|How] {city} [stole our hearts|surprised us|became our favourite city]
        {city} [on a budget|with {companion}|in {season}]
    """),
    fixed=("city", "companion"),
    slots={
        "city": _items("Lisbon; Kyoto; Edinburgh; Vancouver; Seville; Krakow; Hoi An; Cape Town; Oaxaca; "
                       "Reykjavik; Bruges; Porto; Dubrovnik; Queenstown; Tallinn; Valparaiso; Bergen; Galway; "
                       "Ljubljana; Naples"),
        "companion": _items("my partner; two old school friends; my parents; the kids; my sister; a group of "
                            "friends; my husband; my wife"),
        "place": _items("the old harbour; the cathedral square; the covered market; a hilltop viewpoint; the "
                        "botanical gardens; the riverside promenade; a tiny bookshop; the castle walls; a "
                        "neighbourhood bakery; the fish market"),
        "food": _items("grilled sardines; a bowl of noodle soup; fresh pastries; seafood stew; street tacos; "
                       "warm flatbread; local cheese; spiced dumplings; a plate of tapas; fried doughnuts"),
        "stay": _items("a small guesthouse; a family-run hotel; a rented apartment; a converted farmhouse; a "
                       "hostel near the station; a cosy bed and breakfast"),
        "weather": _items("bright and breezy; grey but mild; warm and sticky; crisp and sunny; wet and windy; "
                          "perfectly clear"),
        "mood": _words("magical relaxing exhausting memorable charming lively peaceful"),
    },
    sentences=_templates("""
        We [arrived in|landed in|rolled into] {city} [late on a {weekday}|early one {weekday} morning|in the middle
            of a storm] with {companion} and [far too much luggage|only hand luggage|no real plan].
        [Our base|Home for the week] was {stay}, [a short walk from|not far from|tucked behind] {place}.
        The [owner|host] [greeted us with|welcomed us with] [coffee|tea|a map and a smile] and [a list of her
            favourite spots|some very good advice].
        The weather was {weather} [for most of the trip|on the first day|all week], [which suited us fine|so we
            packed accordingly].
        [On our first morning|The next day] we [wandered|strolled|walked] to {place} [before the crowds arrived|with
            no particular goal].
        [Getting around|Travelling around the city] was easy [by tram|by bus|on foot|by bike], [and cheap too|which
            we loved|once we worked out the tickets].
        [Lunch|Dinner] [was|turned out to be] {food} [at a place with no sign|from a stall near {place}|in a crowded
            little room], and it was [superb|unforgettable|exactly what we needed].
        [I still|We still] talk about the {food} [we ate|we shared] [on the last night|at sunset|after the long
            walk].
        [If you go|When you visit], [book|reserve] a table [ahead|in advance] [at weekends|in high season], because
            the [best|popular] places fill up [fast|quickly].
        [Locals|People we met] were [warm|kind|patient] with our [terrible|clumsy] attempts at the language.
        [One afternoon|Later that week] we took [the tram|the ferry|a local bus|a taxi] out to {place} and [spent
            hours there|lost track of time].
        [The view|The light] from {place} [at golden hour|in the evening|after the rain] was [simply|truly] {mood}.
        [My feet|Our legs] [ached|hurt] [by the end of each day|every night], [but it was worth it|which says a lot
            about how much we walked].
        [We skipped|We avoided] the [big tour buses|organised tours] and [it made all the difference|found quieter
            corners instead].
        [If I am honest|To be honest], {city} [felt|seemed] [more|far more] {mood} than [we expected|any guide book
            suggested].
        {companion} [insisted on|talked me into] [a boat trip|a cooking class|a guided walk], and [I am glad they
            did|it became a highlight].
        [Prices|Costs] were [reasonable|fair|lower than at home] [away from the centre|outside the tourist streets],
            [so it pays to explore|which helped our budget].
        [We bought|I picked up] [a few|some] [postcards|ceramics|spices] at {place} [to bring home|for friends|as
            gifts].
        [There were|We had] [moments|days] when [the crowds|the heat|the rain] [got to us|wore us down], [but|and
            yet] [a good meal fixed everything|we never regretted coming].
        [Our favourite|The best] [evening|night] was spent [sitting by|near] {place} [listening to street
            musicians|watching the boats|with a cold drink].
        [Do pack|Bring] [comfortable shoes|a light jacket|an umbrella], because the [streets|hills|cobbles] [are
            steep|are uneven|can be slippery].
        [Next time|If we return], we [want to|plan to] [stay longer|visit in {season}|explore the coast].
        [I kept|We kept] a [small notebook|travel diary] and [filled it|wrote in it] [every evening|before bed].
        [A friendly|An elderly] [waiter|shopkeeper] [told us|explained] the story of {place} [over coffee|while we
            waited], [which made the visit richer|and we listened for an hour].
        [We missed|We never got to] [the museum|the famous gallery|the day trip] [this time|on this visit], [so that
            is a reason to go back|which gives us an excuse to return].
        [Mornings|Early mornings] [were quiet|felt calm] and [the best time for photos|ideal for a slow breakfast].
        [Overall|All in all], {city} [was|felt] {mood}, and we [left|flew home] [already planning|dreaming about] [a
            return trip|the next visit].
        [The journey home|Our trip back] [took forever|was long] [because of delays|thanks to a cancelled
            connection], [but nobody complained|and we slept most of the way].
        [Tipping|Leaving a tip] is [appreciated|welcome] [but not expected|here], so ask [your host|a local] if you
            are unsure.
        [We spent|We set aside] one [rainy|lazy] day doing nothing but [reading|napping] and [drinking tea|playing
            cards], [and it was wonderful|which we badly needed].
        [Street art|Colourful murals] [covered|brightened] the walls [near|around] {place}, [and we stopped every
            few metres|so my camera was busy].
    """),
)

SPORTS = Topic(
    titles=_templates("""
        {home} [edge|see off|hold] {away} in [a tense|a lively|an entertaining] [derby|contest|afternoon]
        Match report: {home} v {away}
        [Late drama|Frustration|Joy] [at|for] {home} [against|versus] {away}
        {home} [keep their run going|bounce back|stumble] against {away}
    """),
    fixed=("home", "away", "venue", "star"),
    slots={
        "home": _items("Ashford United; Riverton Rovers; Kingsley Town; Port Alden Athletic; Cedar Falls City; "
                       "Millbrook Wanderers; Stonebridge Albion; Fairhaven Rangers"),
        "away": _items("Westfield Harriers; Oakridge Villa; Brookhaven Celtic; Crestwood Dynamo; Elmstead "
                       "Borough; Hollis Park; Northam Swifts; Bexley Athletic"),
        "venue": _items("Meadow Lane; the Riverside Ground; Station Park; Kingsway; the Old Mill Stadium; "
                        "Victoria Road"),
        "star": _items("Okafor; Brennan; Castillo; Lindqvist; Moreau; Novak; Gallagher; Mendes"),
        "player": _items("the young winger; the veteran captain; the left back; the substitute striker; the "
                         "goalkeeper; the holding midfielder; the centre half"),
        "minute": _items("the tenth minute; the twentieth minute; the thirty-eighth minute; the fifty-fifth "
                         "minute; the seventieth minute; the closing minutes; stoppage time; the final minute"),
        "crowd": _items("a sell-out crowd; a noisy crowd; a damp but loyal crowd; the travelling fans; a record "
                        "crowd"),
        "manager": _items("the home manager; the visiting coach; the assistant manager"),
        "verb": _items("curled; drilled; headed; slotted; volleyed; poked"),
    },
    sentences=_templates("""
        {home} [made it three wins in a row|ended a frustrating run|kept their promotion hopes alive] in front of
            {crowd} at {venue} on {weekday}.
        [The opening|The first] twenty minutes were [scrappy|cagey|frantic], with [neither side|few players] able to
            [keep the ball|string passes together].
        {star} [broke the deadlock|opened the scoring|struck first] in {minute}, [when he|after he] {verb} [the
            ball|a low shot] [into the far corner|past the keeper].
        {away} [responded well|hit back quickly|refused to fold] and [forced two good saves|hit the post] [soon
            after|before the break].
        [It was|That was] [no more than they deserved|a fair reflection of the play|harsh on the visitors],
            [according to|in the view of] {manager}.
        [After the restart|In the second half] {home} [pressed higher|changed shape|brought on fresh legs], and [it
            paid off|the game opened up].
        {player} [was everywhere|ran tirelessly|never stopped] and [deserved|earned] the [man of the match
            award|loudest applause] [from the home supporters|at full time].
        [A scuffle|Some pushing] [near the touchline|in the penalty area] [led to|earned] [yellow cards for both
            captains|a stern word from the referee].
        [The referee|The official] [waved away|turned down] [a strong penalty appeal|two loud appeals] [from
            {away}|in {minute}], [to the fury of|which angered] the away bench.
        {away} [equalised|drew level|pulled one back] in {minute} when {player} {verb} [home|in] [from close
            range|after a corner].
        [The noise|The atmosphere] at {venue} [was deafening|lifted the players|turned tense] [for the final ten
            minutes|as the clock ran down].
        [Then|Finally], in {minute}, {star} [popped up again|found space] to [win it|snatch it|settle the contest]
            [with a fine finish|with a scruffy finish].
        "[We showed character|I am proud of the lads|That was hard work], and [that is what this league demands|the
            fans drove us on]," said {manager} [afterwards|after the game].
        [The visitors|Their opponents] [felt hard done by|were left frustrated|will feel they deserved more], having
            [had more of the ball|created more chances] [for long spells|in the second half].
        [Injuries|Suspensions] [continue to|still] [trouble|hamper] {away}, [who were without|missing] [three
            regulars|their first choice keeper] [again|on {weekday}].
        [The result|The win] [lifts|moves] {home} [up to fifth|into the playoff places|clear of the bottom three]
            [in the table|with a game in hand].
        [Next up|Their next match] is [a trip to|a home game against] [the league leaders|a local rival] [next
            {weekday}|in ten days].
        {player} [limped off|was forced off] [with a knee problem|holding a hamstring] [in {minute}|before the end],
            [a worry for|a concern for] {manager}.
        [Ticket sales|Attendances] [have climbed|are up] [this season|since the new owners arrived], [and the club
            hopes to|with plans to] [expand the main stand|improve the facilities].
        [Rain|A cold wind] [swept across|blew over] {venue} [all afternoon|in the second half], [making|which made]
            [passing|control] [difficult|tricky] [for both sides|on a heavy pitch].
        [The youth team graduate|A teenager from the academy] [made his debut|came on for his first appearance]
            [late on|in the final minutes] [to warm applause|to a standing ovation].
        [Supporters|Fans] [stayed behind|lingered] [to sing|to applaud the players] [long after|well after] the
            final whistle.
        [Statistics|The numbers] [told a different story|suggested a closer game], [but|yet] [football is about
            goals|results are what count].
        [In truth|Honestly], neither goalkeeper [had much to do|was seriously tested] [until late on|in the first
            half].
        [A minute's applause|A moment of silence] [was held|took place] [before kick off|beforehand] [in memory
            of|to remember] a [former player|long-serving club volunteer].
        [Both|The two] [sets of supporters|clubs] [raised money|collected donations] [for a local hospice|for the
            food bank] [outside the ground|at the turnstiles].
        [It was|This was] [a performance|a game] [full of effort|short on quality|with plenty of heart], [if not
            always pretty|and the fans loved it].
    """),
)

PRODUCT = Topic(
    titles=_templates("""
        {brand} {product} review: [worth the money|a few weeks in|the good and the bad]
        [I used|Living with] the {brand} {product} for [a month|six weeks|a whole {season}]
        [Is|Should you buy] the {brand} {product} [any good|this year]?
        [Honest|Long-term] review: {brand} {product}
    """),
    fixed=("brand", "product"),
    slots={
        "brand": _items("Nordvik; Brightline; Kestrel; Halden; Aurora Home; Larkspur; Vela; Oakhurst; Solano; "
                        "Greywell"),
        "product": _items("espresso machine; air fryer; electric kettle; rain jacket; office chair; blender; "
                          "hiking backpack; standing desk; mattress; coffee grinder; vacuum cleaner; pair of "
                          "running shoes; slow cooker; desk lamp; duvet"),
        "good": _items("feels solid; looks smart on the counter; is quiet; is easy to clean; arrived well "
                       "packed; is comfortable from day one; is simple to set up; is light but sturdy"),
        "bad": _items("the manual is vague; the colour is duller than in the photos; it is a little bulky; the "
                      "lid feels flimsy; delivery can take two weeks; the cable is short; it picks up marks easily"),
        "shop": _items("a big online retailer; the brand's own shop; a department store; a local independent "
                       "shop; a discount outlet"),
        "rival": _items("a cheaper model; the one my parents own; last year's version; a pricier rival; the "
                        "budget option"),
        "verdict": _items("a solid buy; good value; a little overpriced; hard to beat; a safe choice; worth a "
                          "look"),
    },
    sentences=_templates("""
        I [bought|picked up|finally ordered] the {brand} {product} from {shop} [after months of dithering|when my
            old one gave up|on a whim] in {month}.
        [First impressions are good:|Out of the box,] it {good}, [which is|and that is] [a good start|more than I
            expected].
        [Setting it up|Getting started] took [about ten minutes|barely any time|longer than I hoped], and my only
            early [gripe|niggle] was that {bad}.
        [After|Over] [a few weeks|a month|several weeks] of [daily|regular] use, [I can say|it is fair to say] it
            {good}.
        [My main complaint|The biggest gripe|One niggle] is that {bad}, [though|but] [it is hardly a deal breaker|I
            got used to it].
        [Compared with|Next to] {rival}, it [feels|seems] [a step up|more refined|better made] in [almost|nearly]
            every [way|respect].
        {friend} [borrowed|tried] it [for a weekend|last {weekday}] and [ordered one straight away|was less
            convinced], [which tells you something|for what it is worth].
        [The price|What you pay] [is not small|sits in the middle of the range], so [watch for|keep an eye out for]
            [a sale|discounts] [around|in] {month}.
        [Customer service|The support team] [replied|answered] [within a day|quickly|politely] when I [asked
            about|reported] [a missing part|a small fault], [which impressed me|and sorted it out].
        [I would|I'd] [recommend|suggest] it to [anyone who wants something reliable|anyone who does not want to
            fuss], [but|although] {bad}.
        [Design-wise|In terms of looks], it [looks smart|is understated|looks more expensive than it is] and [comes
            in|is available in] [several|four|three] [colours|finishes].
        [In everyday use|Day to day], [it just works|it quietly gets on with the job], [which is really all I
            wanted|and that is the best compliment I can give].
        [It is|This is] [not perfect|far from flawless], [and|but] [for the money|at this price] it is {verdict}.
        [The warranty|The guarantee] [runs for|covers] [two|three|five] years, [which|and that] [gives some peace of
            mind|suggests the brand trusts its product].
        [Packaging|The box] was [mostly cardboard|easy to recycle|a bit excessive], [and|though] [I appreciate
            that|I wish brands would cut back].
        [My partner|My teenager|My flatmate], [who is hard to please|a sceptic by nature], [now uses it more than I
            do|has stopped complaining about it].
        [If you have a small home|If space is tight|If you live in a flat], [note that|bear in mind that] it is
            [larger|heavier|taller] than it [looks|appears] in the photos.
        [I read|I went through] [dozens of|plenty of] reviews before [buying|choosing], and [most of them|the
            majority] [were spot on|matched my experience].
        [A few|Some] [reviewers|buyers] mention that {bad}, and [I noticed it too|I can confirm that].
        [Cleaning|Looking after] it [is easy|takes a minute|is a little fiddly], [especially|particularly] [if you
            do it straight away|after heavy use].
        Would I buy it again? [Yes, probably|Probably, yes|Most likely], [though I would wait for a sale|and I would
            not hesitate].
        [Overall|In short|All told], the {brand} {product} is {verdict}, [and it has earned its place in our
            home|and I am {pleased} with it].
        [Battery life|Durability] [has been|seems] [good so far|better than expected], [though time will tell|but I
            will update this review later].
        [The instructions were clear enough, so setup was painless|The leaflet was confusing, so I ended up watching
            a video].
        [I paid|It cost me] [a little more than|about the same as] {rival}, [which felt fair|and I do not regret
            it].
        [Noise|Weight|Size] [was|is] [my main worry|a concern] before buying, but [it turned out fine|I need not
            have worried].
    """),
)

LOCAL_NEWS = Topic(
    titles=_templates("""
        {town} [residents|families|shop owners] [welcome|question|celebrate] {project}
        [Plans|Work|Funding] [approved|delayed|announced] for {project} in {town}
        [Big turnout|Record crowds|Sunshine] for {town}'s {event}
        [News in brief|Community news]: {town}
    """),
    fixed=("town", "project", "event", "official"),
    slots={
        "project": _items("the new library; the high street makeover; the riverside path; a new playground; "
                          "the community garden; the swimming pool repairs; a new cycle lane; the market hall "
                          "restoration"),
        "event": _items("summer fair; charity fun run; food festival; Christmas lights switch-on; farmers' "
                        "market; dog show; village fete; music weekend"),
        "official": _items("Councillor Helen Brooks; Councillor David Ahmed; Mayor Susan Reilly; the council "
                           "leader; a council spokesperson"),
        "group": _items("local traders; parents; volunteers; the residents' association; pensioners; the "
                        "parish council; young families"),
        "place": _items("the high street; the town square; Church Lane; the old railway station; the park "
                        "gates; the community centre; the primary school"),
        "amount": _items("forty thousand pounds; half a million pounds; ninety thousand pounds; "
                         "nearly two hundred thousand pounds"),
    },
    sentences=_templates("""
        [Work on|Building work for] {project} in {town} [will begin|are set to start|should finish] [in {month}|next
            {season}|later this year], [the council has confirmed|officials said on {weekday}].
        {official} [said|told reporters] the [scheme|project] [would|will] [make a real difference|benefit everyone]
            [in the area|for years to come].
        Not everyone is [convinced|happy], with {group} [raising concerns|voicing worries] about [parking|the
            cost|noise|disruption].
        [A public meeting|An open evening] [at|in] {place} [drew|attracted] [dozens of|more than a hundred]
            [people|residents] [last {weekday}|earlier this month].
        [The cost|The bill], [put at|estimated at] {amount}, [will be|is being] [shared|covered] [by the council and
            a national grant|partly through donations].
        [Meanwhile|Elsewhere in town], [thousands|hundreds of families] [enjoyed|turned out for] the {event} [on
            {weekday}|at the weekend] [despite|in] [the drizzle|the heat|a chilly wind].
        [Organisers|The volunteer team] said [they were {pleased} with the turnout|the turnout exceeded
            expectations] and [thanked everyone who helped|praised local businesses for their support].
        [Stalls|Stands] [selling|offering] [homemade jam|local honey|plants|crafts] [lined|filled] {place} [all
            day|from early morning].
        [Money raised|All proceeds] [will go to|will support] [the hospice|the youth club|the food bank|the air
            ambulance], [organisers said|according to the committee].
        [Traffic|Road] [diversions|closures] [will be in place|are expected] [around|near] {place} [while the work
            goes on|for several weeks], [so drivers should|and motorists are urged to] plan ahead.
        [Long-time|Lifelong] resident {name} {surname}, [who has lived in|a familiar face in] {town} [for forty
            years|since childhood], [called it|described the plan as] [long overdue|a step in the right direction].
        [Shop owners|Traders] on the high street [hope|believe] [the changes|the work] will [bring|attract] more
            [visitors|shoppers] [into town|at weekends].
        [A petition|An online campaign] [against|in support of] the [plans|scheme] has [gathered|collected] [several
            hundred|over a thousand] signatures [so far|in a week].
        [The local primary school|Pupils from the local school] [took part|joined in] [with a parade|by painting
            banners|with a choir performance], [which|and this] [delighted parents|drew loud cheers].
        [Police|Wardens] [thanked|praised] [the crowds|visitors] for [their good behaviour|being patient] and
            [reported|said there were] [no incidents|only minor problems].
        [Councillors|Council members] [will vote|are due to decide] on [the final design|a revised plan] [next
            month|in {month}], [after|following] [a consultation|further talks with {group}].
        [The next|Another] {event} [is pencilled in|is planned] for {month}, [with organisers already looking for
            volunteers|and the committee is already inviting stallholders].
        [Readers|Residents] [with views on|who want a say on] {project} [can|are invited to] [drop in|write to the
            council|attend the next meeting] [before the end of|during] {month}.
        [A local bakery|The family-run bakery] on {place} [celebrated|marked] [fifty years|its anniversary] [this
            week|on {weekday}] [with free cakes|by giving away bread] for [regulars|customers].
        [Flooding|Heavy rain] [last winter|earlier in the year] [damaged|closed] [part of|sections of] {place},
            [and|so] [repairs|the clean-up] [are finally|are now] [underway|finished].
        [The town's oldest resident|A much-loved neighbour], {name} {surname}, [turned|celebrated turning] [one
            hundred|one hundred and two] [with a party|with family and friends] at {place}.
        [Volunteers|A group of neighbours] [spent|gave up] [their {weekday}|a whole weekend] [picking
            litter|planting bulbs|painting benches] [along|near] {place}.
        [For now|In the meantime], [the council|officials] [ask|urge] [everyone|residents] to [keep an eye on
            updates|check the notice boards] [for changes|for the latest news].
    """),
)

CELEBRITY = Topic(
    titles=_templates("""
        {star} [opens up about|talks candidly about|reflects on] [fame|family life|the new series]
        [All the looks from|Highlights from] the [premiere|launch party] of {show}
        {star} and {partner} [step out together|spotted in {city}|share happy news]
        [Why everyone is talking about|The real story behind] {star}'s [latest role|new look]
    """),
    fixed=("star", "partner", "show", "city"),
    slots={
        "star": _items("Ava Sinclair; Jonah Reyes; Lila Marchetti; Theo Blackwood; Sienna Hale; Marco Delaney; "
                       "Zara Quinn; Callum Frost"),
        "partner": _items("her longtime boyfriend; his wife; her fiancé; a mystery companion; his co-star; "
                          "her husband"),
        "show": _items("Silver Harbour; The Long Summer; Midnight Garden; Northern Lights; Second Chances; "
                       "The Glass House"),
        "city": _items("London; Los Angeles; Paris; New York; Milan; Sydney; Toronto"),
        "outfit": _items("a flowing emerald gown; a sharp navy suit; a vintage lace dress; a bold red jumpsuit; "
                         "a simple black tuxedo; an oversized cream blazer"),
        "hobby": _items("pottery; long-distance running; baking bread; gardening; painting; surfing; yoga"),
        "mag": _items("a glossy magazine; a morning talk show; a popular podcast; a weekend newspaper"),
    },
    sentences=_templates("""
        {star} [turned heads|stole the show|looked radiant] at the [premiere|launch] of {show} in {city} [on
            {weekday} night|last week] in {outfit}.
        [The star|The actor] [arrived|walked the red carpet] with {partner}, [smiling for photographers|waving to
            fans] [for several minutes|before heading inside].
        [Speaking to|In a candid chat with] {mag}, {star} [admitted|revealed|confessed] that [fame|the spotlight]
            [can feel overwhelming|is not always easy].
        "[I try to|I really try to] [keep my feet on the ground|stay close to my family]," [the star|{star}]
            [said|explained], "[and|because] [that keeps me sane|nothing else matters as much]."
        [Fans have been buzzing|Viewers have been thrilled] since [the trailer|a first look] for {show}
            [dropped|appeared online] [in {month}|earlier this {season}].
        [Away from the cameras|Off screen], {star} [has taken up|is obsessed with|spends weekends on] {hobby},
            [which|and] [friends say|insiders claim] [keeps them grounded|helps with the pressure].
        [Rumours|Whispers] [of|about] [a secret wedding|a surprise engagement|a move abroad] [have swirled|have
            circulated] [for months|all {season}], [though|but] [nothing has been confirmed|the couple stay quiet].
        [Stylists|Fashion writers] [praised|loved] the [choice|look], [calling it|describing it as]
            [timeless|effortless|daring] [and|yet] [perfectly judged|very personal].
        [The series|{show}] [follows|tells the story of] [two sisters|a family|a small-town doctor] [who
            return|trying to rebuild their lives] [after a long absence|in a seaside town].
        [Critics|Early reviews] [have been|were] [warm|glowing|mixed], [with many singling out|and most praised]
            {star}'s [performance|quiet, moving turn].
        [Later that evening|After the screening], [the cast|the stars] [headed to|moved on to] [an after-party|a
            private dinner] [at a hotel|nearby], [according to|said] [onlookers|guests].
        [Earlier this year|Last {season}], {star} [spoke about|opened up about] [a difficult period|burnout|grief]
            [in an emotional interview|on a podcast], [winning|earning] [wide support|praise from fans].
        [A spokesperson|A representative] for {star} [declined to comment|had no comment] on [the reports|the
            rumours] [when approached|this week].
        [The couple|The pair] [were later seen|were photographed] [strolling|having lunch] [in {city}|near their
            home] [holding hands|looking relaxed].
        [Their|The] [social media|online] post [racked up|gathered] [millions of|thousands of] likes [within
            hours|overnight], [with fellow stars sending congratulations|as famous friends left kind messages].
        [Filming|Shooting] for [a second series|the next project] [is said to|will reportedly] [begin|start] [in
            {month}|next {season}], [so fans will not wait long|to the delight of fans].
        [Growing up|As a child], {star} [dreamed of|wanted to be] [a vet|a dancer|a teacher], [and|but] [a school
            play changed everything|acting came along by accident].
        [The star|{star}] [also|recently] [launched|backed] [a charity campaign|a fundraiser] [for|supporting]
            [animal shelters|young carers|ocean clean-ups].
        [Whatever comes next|Whatever happens], [one thing is clear|one thing seems certain]: {star} [is not going
            anywhere|has plenty of fans in their corner].
    """),
)

GARDENING = Topic(
    titles=_templates("""
        [Growing|How I grow] {plant} [in a small garden|on a balcony|without fuss]
        [Jobs for|What to do in] the garden [this {month}|in {season}]
        [My|Our] {plant} [finally flowered|had a great year|struggled this year]
        [Notes from|A week in] the [allotment|garden|vegetable patch]
    """),
    fixed=("plant",),
    slots={
        "plant": _items("tomatoes; sweet peas; dahlias; runner beans; lavender; roses; courgettes; strawberries; "
                        "hydrangeas; garlic; tulips; raspberries"),
        "pest": _items("slugs; aphids; snails; blackfly; pigeons; caterpillars; the neighbour's cat"),
        "spot": _items("the sunny bed by the fence; a raised bed; large pots on the patio; the greenhouse; the "
                       "allotment; a sheltered corner; the windowsill"),
        "feed": _items("homemade compost; well-rotted manure; a seaweed feed; leaf mould; a general fertiliser; "
                       "comfrey tea"),
        "tool": _items("a sharp pair of secateurs; an old trowel; a long-handled hoe; a watering can; a garden "
                       "fork; a kneeling pad"),
        "weather": _items("a late frost; weeks of rain; a long dry spell; a cold spring; strong winds; a wet "
                          "summer"),
    },
    sentences=_templates("""
        [This year|This {season}] I [decided to|finally managed to] grow {plant} in {spot}, [and|so far] [it has
            gone better than expected|the results have been mixed].
        [Sow|Plant] them [in {month}|once the soil warms|after the last frost], [spacing them well|giving each one
            room], [because crowded plants|since cramped plants] [sulk|struggle].
        A thick layer of [compost|manure|leaf mould] [in spring|early on] [keeps the soil moist|feeds the soil] and
            [saves hours of watering|keeps weeds down].
        [The biggest problem|My constant battle] [has been|was] {pest}, [which|and they] [ate|destroyed] [half the
            seedlings|the young leaves] [overnight|in a week].
        [I tried|I have tried] [beer traps|copper tape|a fine net] [against|to stop] {pest}, [and it helped a
            little|but it made little difference, sadly].
        {weather} [set everything back|slowed things down] [this year|in {month}], [so patience was needed|but the
            plants recovered].
        [Water|Give them a drink] [in the evening|early in the morning] rather than [at midday|in full sun], [so
            less is lost|to avoid scorching the leaves].
        [My favourite tool for this job|The most useful thing in my shed] is {tool}, [bought years ago|a gift from
            {friend}] [and still going strong|and worth every penny].
        [Pinch out|Remove] the [side shoots|tips|spent flowers] [every week or so|regularly] [to keep the plants
            tidy|to encourage more flowers].
        Nothing beats the [joy|pleasure] of [picking|cutting] your own {plant} [on a warm evening|first thing in the
            morning].
        {friend} [gave me|passed on] [a few seedlings|some cuttings] [in {month}|last {season}], and [they have
            thrived|most of them survived].
        [Feed|Give] them [a liquid feed|{feed}] [every fortnight|once a week] [once they start flowering|through the
            summer] for [the best|a bigger] harvest.
        [Birds|Bees|Butterflies] [visit|love] [the garden|this corner] [every day|all summer], [which|and that]
            [makes it all worthwhile|is half the point].
        [Stake|Support] [tall plants|the stems] [early|before they flop], [because|as] [strong winds|a summer storm]
            can [flatten|snap] them [in minutes|overnight].
        [Weeding|Hoeing] [little and often|for ten minutes a day] is [far easier|much less work] than [one big
            session|a weekend of catching up].
        [Next year|Next {season}] I [plan to|want to] [try a new variety|grow twice as many|move them to {spot},
            where the light is better].
        [Keep|Save] [a few|some] seeds [from the best plants|each autumn], [dry them|store them] [in paper
            envelopes|somewhere cool], and [label them clearly|write the date on them].
        [Our neighbour|An old gardener at the allotment] [swears by|recommends] [planting by the moon|talking to the
            plants|coffee grounds], [and who am I to argue|which I have not tried yet].
        [In {month}|Towards the end of {season}] [cut back|tidy up] [the old growth|the borders] and [add|spread]
            {feed} [to feed the soil|ready for next year].
        [The garden|My little plot] [is never finished|is always a work in progress], [and|but] [I would not have it
            any other way|that is part of the charm].
        [Containers|Pots] [dry out|lose water] [quickly|fast] in [hot weather|summer], so [check|water] them
            [daily|every evening] [in a heatwave|during dry spells].
    """),
)

REAL_ESTATE = Topic(
    titles=_templates("""
        [Charming|Spacious|Beautifully renovated] {home} [for sale|on the market] in {area}
        [Inside|Take a look inside] [a|this] {home} in {area}
        [Is now a good time to buy|Buying a home] in {area}?
        {area} [property|house prices|homes]: [what buyers should know|the view from the street]
    """),
    fixed=("home", "area", "agent"),
    slots={
        "home": _items("three-bedroom semi; Victorian terrace; family home; two-bedroom cottage; modern "
                       "townhouse; garden flat; detached bungalow; converted barn"),
        "area": _items("Maple Grove; the Old Town; Riverside; Oakridge; Fairhaven; the Elmstead conservation "
                       "area; Kingsley village; Bexley Heath"),
        "agent": _items("Harper and Quinn; Whitfield Homes; Barker Estates; the Ellison agency; Moorland "
                        "Property"),
        "room": _items("the kitchen; the living room; the main bedroom; the bathroom; the garden room; the "
                       "hallway; the study; the loft"),
        "feature": _items("original fireplaces; high ceilings; oak floors; a south-facing garden; a log "
                          "burner; large sash windows; a walk-in pantry; built-in wardrobes; a private "
                          "driveway; a sunny terrace"),
        "nearby": _items("good schools; the railway station; a large park; independent shops; the river; "
                         "several cafes; a weekly market; open countryside"),
        "buyer": _items("young families; first-time buyers; downsizers; commuters; investors; couples"),
    },
    sentences=_templates("""
        [This|A] {home} in {area} [has just come|is now] on the market with {agent}, [and interest has been
            strong|drawing plenty of attention].
        [Step inside|Walk through the front door] and [you are greeted by|you will immediately notice] {feature}, [a
            reminder of the house's history|which gives the house real character].
        [The kitchen|The living room|The dining room] [has been|was] [opened up|fully renovated|given a fresh look]
            [by the current owners|in recent years] and [now|easily] [fits a big table|gets light all day].
        [Upstairs|On the first floor] [there are|you will find] [three|two|four] [good-sized|bright] bedrooms [and a
            family bathroom|with views over the gardens].
        [Outside|Out the back], [the garden|a lawn] [is|stays] [sunny|private|well kept] [for most of the day|in the
            afternoon], [perfect for|ideal for] [summer dinners|children and pets].
        [The area|{area}] is [popular with|loved by] {buyer} [thanks to|because of] {nearby} [within walking
            distance|a few minutes away].
        [Prices|House prices] in {area} [have risen|have cooled|held steady] [over the past year|since {season}],
            [according to|says] {agent}.
        "[Homes like this|Properties of this type] [rarely come up|do not stay on the market long]," [a spokesperson
            for|a negotiator at] {agent} [said|told us].
        [The owners|The sellers], [who|having] [have lived here|raised their children here] [for twenty years|since
            the nineties], [are moving|plan to move] [to be near family|to the coast].
        [Buyers|Anyone viewing] should [note|be aware] that {room} [would benefit from|needs] [some updating|a
            little work], [which is reflected in the price|though it is fully usable].
        [Viewings|Open viewings] [are being held|will take place] [on {weekday}|this weekend] [by
            appointment|between ten and two].
        [Among the|Other] [highlights|standout features] [are|include] {feature} and {feature}, [both carefully
            restored|which buyers often ask about].
        [Parking|Street parking] [can be tight|is easy] [in the evenings|on this road], [but|and] with {nearby}
            close by, [you rarely need a car|most errands can be done on foot].
        [For|Among] {buyer}, [the big draw|the main attraction] [is|remains] [the space|the location|the sense of
            community] [rather than|more than] [the finish|the price].
        [Mortgage rates|Borrowing costs] [have eased|are still high] [this {season}|lately], [so|and] [buyers
            are|many people are] [taking their time|moving more carefully].
        [A local|Another] [estate agent|surveyor] [suggested|advised] that [buyers|first-timers] [get a full
            survey|budget for repairs] [on older homes|before making an offer].
        [The house|The property] [also|even] [comes with|has] [planning permission for|room for] [a rear extension|a
            loft conversion], [giving|which gives] [a new owner|buyers] [options|room to grow].
        [Neighbours|People on the street] [describe it as|call it] [a friendly road|a quiet corner], [where children
            still play outside|with a summer street party].
        [If you are|For anyone] [house hunting|looking to move] [in {area}|nearby], [register with|talk to] [local
            agents|{agent}] [early|now], [since|because] [the best homes go quickly|many sales happen before
            listings appear].
        [The asking price|The guide price] is [in line with|just above|a little below] [similar homes|recent sales]
            [on nearby streets|in the area].
    """),
)

TOPICS: Mapping[str, Topic] = MappingProxyType({
    "recipe": RECIPE, "travel": TRAVEL, "sports": SPORTS, "product_review": PRODUCT, "local_news": LOCAL_NEWS,
    "celebrity": CELEBRITY, "gardening": GARDENING, "real_estate": REAL_ESTATE,
})
