"""Word lists for the surface kinds (`rename`, `distractor`): first names by gender, countable
objects grouped so that a swap inside a group keeps a problem coherent, cities, and the units
and phrases the distractor sentences are built from.

Written for this project. Groups are narrow on purpose: a swap must not change anything a
problem could count on (legs, wheels, pairs, coin values), so nouns with numeric meaning
(dozen, pair, coin names, socks, cards, dice, vehicles) are not here at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache


def split_words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of a word list written as one block of text."""
    return tuple(text.split())


FEMALE = split_words(
    """
    Abigail Ada Adaeze Addison Adeline Adriana Agnes Aiko Aisha Alessia Alexandra Alice Alicia
    Alina Alisha Allison Alma Alyssa Amanda Amara Amelia Amina Amy Ana Anastasia Andrea Angela
    Anita Anjali Ann Anna Annabelle Anne Annette Annie Antonia Anya Ariana Arlene Ashley Astrid
    Audrey Ava Ayana Ayesha Aylin Barbara Beatrice Beatriz Becky Bella Bernadette Bertha Beth
    Bethany Betty Beverly Bianca Bonnie Brenda Brianna Bridget Brittany Camila Camille Carla
    Carmen Caroline Carolyn Cassandra Catherine Cecilia Celeste Charlene Charlotte Cheryl
    Chiara Chioma Chloe Christina Christine Cindy Claire Clara Claudia Colleen Connie Cora
    Courtney Cynthia Dalia Daniela Danielle Daria Darlene Deborah Debra Defne Delia Denise Diana
    Diane Dina Divya Dolores Donna Dora Doris Dorothy Edith Edna Eileen Elaine Eleanor Elena
    Elif Eliza Elizabeth Ella Ellen Ellie Eloise Elsa Elsie Emilia Emily Emma Erica Erika Esther
    Ethel Eva Evelyn Farah Fatima Felicia Fernanda Fiona Folake Francesca Freya Gabriela
    Gabriella Gail Gemma Gianna Gina Giulia Gladys Glenda Gloria Greta Gretchen Guadalupe
    Gwendolyn Hailey Hana Hanna Hannah Harriet Heidi Helen Helena Hilda Ida Imani Ingrid Irene
    Irina Isabel Isabella Isabelle Isla Ivana Jacqueline Jana Jane Janet Janice Jeanette Jenna
    Jennifer Jenny Jessica Jill Joan Joanna Joanne Josephine Joyce Judith Judy Julia Juliana
    Julie Juliet Kaitlyn Karen Karina Kate Katherine Kathleen Kathryn Kathy Katie Katrina Katya
    Kavya Kayla Keiko Kimberly Kristen Kristin Kylie Lakshmi Lana Lara Laura Lauren Layla Leah
    Leila Lena Leticia Liliana Lillian Lina Linda Lisa Lois Lorena Loretta Lori Lorraine Louise
    Lucia Lucille Lucy Luisa Lydia Mabel Mackenzie Madeline Maggie Maisie Mara Marcia Margaret
    Maria Mariam Mariana Marie Marilyn Marina Marisol Marjorie Marlene Martha Mary Maureen Maya
    Meera Megan Mei Melanie Melinda Melissa Michelle Mila Mildred Milena Miriam Molly Monica
    Nadia Nancy Naomi Natalia Natalie Natasha Neha Nellie Ngozi Nia Nicole Nina Noor Nora Norah
    Norma Olga Olivia Paige Pamela Paola Patricia Paula Pauline Peggy Penelope Phyllis Pilar
    Pooja Priscilla Priya Rachel Rafaela Ramona Rania Rebecca Renee Rhonda Rita Roberta
    Rosalind Rosemary Rosie Ruth Sabrina Sadie Sakura Sally Samantha Samira Sana Sandra Sara
    Sarah Selena Serena Sharon Sheila Shirley Silvia Sofia Sonia Sophia Sophie Stacy Stephanie
    Susan Suzanne Svetlana Sylvia Tamara Tanya Tara Tatiana Teresa Thandiwe Theresa Tiffany Tina
    Valentina Valeria Valerie Vanessa Vera Veronica Vicky Victoria Vivian Wanda Wendy Wilma
    Ximena Yara Yasmin Yolanda Yumi Yvonne Zara Zeynep Zoe Zofia Zoey Zuri
    Abby Arianna Ashlyn Aurelia Becca Brooke Carly Cassie Catalina Deepa Elisa Elise Emi Erin
    Gabby Haruka Hattie Huda Jada Jodie Katelyn Kaylee Keisha Kelsey Kendra Kiara Kristy Lacey
    Libby Lindsay Lola Maddie Mandy Manon Marcy Margot Marissa Marta Mika Millie Mindy Mona
    Monique Nisha Nour Paloma Rekha Rina Riya Rosa Salma Shreya Sloane Sneha Stacey Sunita Tanvi
    Tasha Thea Tiana Tracey Trudy Winnie Yui Jen Carrie Meredith Candice Katy Hallie Annika
    Mariah Charmaine Helga Milly Vicki Elaina Patty Robyn Aliya Shawna Lainey Maddy Dolly Rani
    Sarai Belen Katina Gwen Lucinda Marla Nadine Odette Pippa Rhea Tessa Ursula Wren
    Amber Candy Carol Daisy Dawn Faith Ginger Grace Hazel Heather Holly Hope Iris Ivy Jade
    Jasmine Joy Lily Melody Olive Pearl Penny Rose Ruby Sandy Sue Violet Willow
    """
)
"""Female first names (English and many other languages), spelled without accents."""

MALE = split_words(
    """
    Aaron Abdul Adam Adrian Ahmed Aiden Alan Albert Alejandro Alessandro Alexander Alexei Alfred
    Ali Amir Amit Anders Andre Andres Andrew Angelo Anil Anthony Antoine Antonio Arjun Arnold
    Arthur Arturo Ashton Axel Baraka Benjamin Bernard Bilal Bjorn Boris Brad Bradley Brandon
    Brian Bruce Bryan Burak Caleb Calvin Carl Carlos Carter Cesar Charles Chidi Christopher
    Clarence Colin Connor Craig Curtis Daiki Damian Daniel Darius Darren David Declan Dennis
    Derek Diego Dmitri Dominic Donald Douglas Duncan Dylan Edgar Eduardo Edward Edwin Elias
    Elijah Emeka Emil Emilio Emmanuel Emre Enrique Enzo Eric Erik Ernest Esteban Ethan Evan
    Ezra Fabian Farid Felix Femi Fernando Finn Francis Franco Fred Frederick Gabriel Gareth
    George Gerald Gerardo Giovanni Giuseppe Gordon Gregory Gustavo Hamza Hans Harold Harry
    Haruto Hassan Hector Henri Henry Herbert Hiroshi Howard Hugo Ian Ibrahim Igor Isaac Isaiah
    Ivan Jabari Jack Jacob Jacques Jake James Jamal Jared Jason Jasper Javier Jayden Jeffrey
    Jeremy Jerome Jesus Joel John Johnny Jonathan Jorge Jose Joseph Joshua Juan Julian Julius
    Juma Justin Kaito Kamau Karim Karl Keith Kenji Kenneth Kerem Kevin Khalid Klaus Kofi Kwame
    Kyle Lamar Lars Lawrence Leo Leon Leonard Leonardo Levi Liam Lorenzo Louis Luca Luis Luke
    Lukas Malcolm Mandla Manuel Marcel Marco Marcus Mario Martin Mason Mateo Matteo Matthew
    Matthias Maurice Max Mehmet Michael Miguel Mikhail Milo Ming Mohammed Mustafa Nathan
    Nathaniel Neil Nicholas Nikolai Nils Noah Nolan Norman Obi Oleg Oliver Omar Oscar Owen
    Pablo Patrick Paul Pavel Pedro Peter Philip Pierre Rafael Rahul Raj Ralph Ramon Randy Raul
    Ravi Raymond Reginald Ricardo Richard Robert Roberto Rodrigo Roger Rohan Roland Roman
    Ronald Rory Ruben Russell Ryan Samir Samuel Sanjay Santiago Sebastian Sergei Sergio Seth
    Simon Sipho Sota Stanley Stefan Stephen Steven Sven Takeshi Tariq Terrence Thabo Theo
    Theodore Thomas Timothy Tobias Todd Tom Tony Travis Trevor Tunde Tyler Victor Vikram
    Vincent Viktor Vivek Walter Warren Wayne Wei William Wyatt Xavier Yuri Yusuf Yuto Zachary
    Zaid Ben Bobby Billy Carlo Charlie Dave Dan Danny Fredrick Greg Jeff Jerry Jim Jimmy Joe
    Jon Josh Ken Larry Matt Mike Nick Pete Rick Ron Sid Steve Ted Tim Tommy Toby Zack
    Alec Alfie Allan Allen Alvaro Andy Archie Arun Ashok Bentley Benny Brady Brent Brett Chad
    Clint Cody Corey Darnell Darryl Deepak Derrick Dustin Eddie Elliott Faisal Felipe Floyd
    Freddie Gary Glenn Grayson Hank Ignacio Jalen Jay Jeremiah Jesse Joaquin Joey Julien Karan
    Keegan Kenny Kenta Kirk Lance Lenny Lloyd Malik Manny Manoj Marty Marvin Mathieu Mitch Mitchell
    Nabil Nate Neal Nikhil Olivier Ollie Perry Rajesh Rakesh Rashid Reggie Ricky Ronnie Roy
    Ryo Sean Shane Shota Sunil Tomas Troy Tyrone Tyson Vernon Vijay Vince Walid Walt Wes Wesley
    Youssef Zane Errol Bryce Colby Cole Carson Mack Eddy Jamaal Barry Clyde Dexter Elmer
    Gilbert Homer Irving Leroy Luther Monty Otis Percy Rex Rudy Stuart Wallace Wilbur
    Bill Bob Chase Dean Frank Gene Herb Hunter Mark Miles Ray Rob
    """
)
"""Male first names (English and many other languages), spelled without accents."""

UNISEX = split_words(
    """
    Alex Avery Bailey Blair Cameron Casey Chris Dana Devon Drew Emerson Finley Frankie Hayden
    Jackie Jamie Jan Jean Jessie Jordan Jules Kai Kelly Kendall Kim Kiran Kris Lee Leslie Lynn
    Morgan Nikita Parker Pat Peyton Quinn Reese Riley Robin Rowan Sam Sasha Shannon Sidney
    Skyler Taylor Terry Toni Tracy Yuki Akira Dale Jody Jaime Shiloh Mel
    """
)
"""Names given to both: a unisex name is only ever swapped for another unisex name."""

COMMON_WORD_NAMES = frozenset(
    split_words(
        """
        Amber Bill Bob Candy Carol Chase Daisy Dawn Dean Drew Faith Frank Gene Ginger Grace
        Hazel Heather Herb Holly Hope Hunter Iris Ivy Jade Jasmine Joy Lily Mark Melody Miles
        Olive Pat Pearl Penny Ray Rob Rose Ruby Sandy Sue Violet Willow Jan Lee Dale Jay Lance
        Chad Mona Lola
        """
    )
)
"""Names that are also ordinary words: found as names only where the text shows it (mid-
sentence, a possessive, a verb after them), and never chosen as a new name."""

PLACE_LIKE_NAMES = frozenset(
    split_words("Jordan Charlotte Victoria Sidney Jackson Chelsea Austin Madison Florence Eugene")
)
"""Names that are also places: never renamed where a preposition of place precedes them, and
never chosen as a new name."""

FORBIDDEN_NEW = frozenset(
    split_words("Alexa Siri Mercedes Tesla Pascal Lucas Newton Euler Gauss Fermat Ford Lincoln")
)
"""Never chosen as a new name: brands, and names of theorems and sequences."""

TITLES = frozenset(
    split_words(
        """
        Mr Mrs Ms Miss Mx Dr Prof Professor Mister Madam Madame Doctor Officer Detective Judge
        Senator President Governor Mayor King Queen Prince Princess Lord Lady Sir Dame Saint St
        San Santa Mount Mt Lake Port Fort Cape New North South East West
        """
    )
)
"""A name after one of these is a surname, a title's bearer or part of a place: not renamed."""

SURNAME_TITLES = frozenset(
    split_words(
        """
        Mr Mrs Ms Miss Mx Dr Prof Professor Mister Madam Madame Doctor Officer Detective Judge
        Senator Coach Principal Captain Nurse
        """
    )
)
"""Titles a surname follows: the word after one is renamed as a surname (gender is the
title's, so any surname fits)."""

SURNAMES = split_words(
    """
    Smith Johnson Williams Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez
    Gonzalez Wilson Anderson Moore Martin Perez Thompson Harris Sanchez Clark Ramirez
    Lewis Robinson Walker Wright Torres Nguyen Flores Adams Nelson Baker Rivera
    Campbell Mitchell Carter Roberts Patel Chen Wang Singh Kumar Sato Suzuki Tanaka Yamamoto
    Schmidt Schneider Fischer Weber Rossi Russo Ferrari Bianchi Dubois Bernard Moreau Laurent
    Novak Kowalski Ivanov Petrov Popov Okafor Okonkwo Mensah Diallo Mwangi Haddad Khan Ahmed
    Cohen Murphy Kelly Sullivan Walsh Byrne Ryan Evans Hughes Edwards Collins Stewart Morris
    Rogers Morgan Cooper Richardson Howard Peterson Ramos Watson Sanders Bennett Barnes Ross
    Henderson Coleman Jenkins Perry Powell Patterson Fisher Vasquez Simmons Romero Jordan Reyes
    Hamilton Graham Choi Yilmaz
    Kaya Demir Santos Silva Pereira Costa Oliveira Andersson Johansson Larsen Hansen Jensen
    """
)
"""Common surnames across languages (none an ordinary word): new surnames for a person named
by title."""

NAME_SUFFIXES = frozenset(
    split_words(
        """
        Street St Avenue Ave Road Rd Boulevard Lane Drive Park School High Elementary Middle
        Academy College University Institute Hospital Hall Center Centre County City Town
        Village Lake River Mountain Island Bay Beach Bridge Square Mall Market Stadium Airport
        Station Library Museum Theater Theatre Church Company Co Inc Corp Corporation Ltd
        Foundation Store Shop Bakery Restaurant Cafe Diner Hotel Motel Farm Farms Ranch Garden
        Gardens Zoo Club Team Award Prize Day Cup Trophy Times Post Journal Bank Theorem Law
        Formula Triangle Rule Principle Lemma Conjecture Identity Inequality Numbers Number
        Sequence Method Series Constant Equation Polynomial Function Transform Test Problem
        Paradox Prime Primes Point Points Circle Curve
        """
    )
)
"""A name directly before one of these names a place, an organisation or a theorem."""

# -- objects --------------------------------------------------------------------------------

OBJECT_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "fruit": (
        ("apple", "apples"),
        ("pear", "pears"),
        ("peach", "peaches"),
        ("plum", "plums"),
        ("mango", "mangoes"),
        ("lemon", "lemons"),
        ("apricot", "apricots"),
        ("orange", "oranges"),
        ("banana", "bananas"),
        ("nectarine", "nectarines"),
        ("pomegranate", "pomegranates"),
        ("papaya", "papayas"),
    ),
    "berries": (
        ("strawberry", "strawberries"),
        ("blueberry", "blueberries"),
        ("raspberry", "raspberries"),
        ("blackberry", "blackberries"),
        ("cherry", "cherries"),
        ("grape", "grapes"),
    ),
    "melons": (
        ("watermelon", "watermelons"),
        ("melon", "melons"),
        ("cantaloupe", "cantaloupes"),
    ),
    "vegetables": (
        ("carrot", "carrots"),
        ("potato", "potatoes"),
        ("tomato", "tomatoes"),
        ("onion", "onions"),
        ("cucumber", "cucumbers"),
        ("eggplant", "eggplants"),
        ("cabbage", "cabbages"),
        ("beet", "beets"),
        ("radish", "radishes"),
        ("turnip", "turnips"),
    ),
    "baked goods": (
        ("cookie", "cookies"),
        ("cupcake", "cupcakes"),
        ("muffin", "muffins"),
        ("brownie", "brownies"),
        ("donut", "donuts"),
        ("pastry", "pastries"),
        ("croissant", "croissants"),
    ),
    "breads": (("bagel", "bagels"), ("pretzel", "pretzels"), ("bun", "buns")),
    "cakes": (
        ("cake", "cakes"),
        ("pie", "pies"),
        ("tart", "tarts"),
        ("cheesecake", "cheesecakes"),
    ),
    "sweets": (
        ("candy", "candies"),
        ("lollipop", "lollipops"),
        ("gumball", "gumballs"),
        ("chocolate", "chocolates"),
        ("toffee", "toffees"),
        ("caramel", "caramels"),
        ("jelly bean", "jelly beans"),
    ),
    "dishes": (
        ("sandwich", "sandwiches"),
        ("burger", "burgers"),
        ("taco", "tacos"),
        ("burrito", "burritos"),
        ("hot dog", "hot dogs"),
    ),
    "flowers": (
        ("rose", "roses"),
        ("tulip", "tulips"),
        ("daisy", "daisies"),
        ("lily", "lilies"),
        ("sunflower", "sunflowers"),
        ("daffodil", "daffodils"),
        ("orchid", "orchids"),
        ("carnation", "carnations"),
        ("marigold", "marigolds"),
        ("petunia", "petunias"),
        ("peony", "peonies"),
    ),
    "writing tools": (
        ("pencil", "pencils"),
        ("pen", "pens"),
        ("crayon", "crayons"),
        ("marker", "markers"),
        ("highlighter", "highlighters"),
    ),
    "paper goods": (("notebook", "notebooks"), ("notepad", "notepads"), ("folder", "folders")),
    "paper collectibles": (
        ("sticker", "stickers"),
        ("stamp", "stamps"),
        ("postcard", "postcards"),
        ("badge", "badges"),
    ),
    "nature finds": (
        ("seashell", "seashells"),
        ("pebble", "pebbles"),
        ("acorn", "acorns"),
        ("pinecone", "pinecones"),
    ),
    "gems": (
        ("ruby", "rubies"),
        ("emerald", "emeralds"),
        ("sapphire", "sapphires"),
        ("opal", "opals"),
    ),
    "toys": (
        ("doll", "dolls"),
        ("teddy bear", "teddy bears"),
        ("kite", "kites"),
        ("yo-yo", "yo-yos"),
        ("toy robot", "toy robots"),
    ),
    "tops": (
        ("shirt", "shirts"),
        ("blouse", "blouses"),
        ("sweater", "sweaters"),
        ("hoodie", "hoodies"),
        ("cardigan", "cardigans"),
    ),
    "outerwear": (("jacket", "jackets"), ("coat", "coats"), ("raincoat", "raincoats")),
    "headwear": (("hat", "hats"), ("beanie", "beanies"), ("beret", "berets")),
    "dresses": (("dress", "dresses"), ("skirt", "skirts"), ("gown", "gowns")),
    "neckwear": (("scarf", "scarves"), ("shawl", "shawls")),
    "jewellery": (
        ("bracelet", "bracelets"),
        ("necklace", "necklaces"),
        ("brooch", "brooches"),
        ("pendant", "pendants"),
    ),
    "art": (("painting", "paintings"), ("poster", "posters"), ("drawing", "drawings")),
    "seats": (("chair", "chairs"), ("stool", "stools"), ("armchair", "armchairs")),
    "linens": (
        ("towel", "towels"),
        ("blanket", "blankets"),
        ("pillow", "pillows"),
        ("cushion", "cushions"),
    ),
    "bottles": (("bottle", "bottles"), ("jug", "jugs"), ("flask", "flasks")),
    "boxes": (("box", "boxes"), ("crate", "crates")),
    "bags": (("bag", "bags"), ("sack", "sacks")),
    "pails": (("basket", "baskets"), ("bucket", "buckets"), ("bin", "bins"), ("tub", "tubs")),
    "small pets": (("cat", "cats"), ("rabbit", "rabbits"), ("ferret", "ferrets")),
    "rodents": (
        ("hamster", "hamsters"),
        ("guinea pig", "guinea pigs"),
        ("gerbil", "gerbils"),
        ("chinchilla", "chinchillas"),
    ),
    "young pets": (("puppy", "puppies"), ("kitten", "kittens"), ("bunny", "bunnies")),
    "milk animals": (("cow", "cows"), ("goat", "goats")),
    "riding animals": (("horse", "horses"), ("donkey", "donkeys"), ("pony", "ponies")),
    "wool animals": (("llama", "llamas"), ("alpaca", "alpacas")),
    "poultry": (
        ("chicken", "chickens"),
        ("duck", "ducks"),
        ("goose", "geese"),
        ("hen", "hens"),
        ("turkey", "turkeys"),
    ),
    "small birds": (
        ("parrot", "parrots"),
        ("pigeon", "pigeons"),
        ("sparrow", "sparrows"),
        ("canary", "canaries"),
        ("finch", "finches"),
    ),
    "big cats": (("lion", "lions"), ("tiger", "tigers"), ("leopard", "leopards")),
    "grazers": (
        ("zebra", "zebras"),
        ("giraffe", "giraffes"),
        ("antelope", "antelopes"),
        ("gazelle", "gazelles"),
    ),
    "large animals": (("elephant", "elephants"), ("rhino", "rhinos"), ("hippo", "hippos")),
    "canines": (("wolf", "wolves"), ("fox", "foxes"), ("coyote", "coyotes")),
    "insects": (
        ("beetle", "beetles"),
        ("ladybug", "ladybugs"),
        ("cricket", "crickets"),
        ("grasshopper", "grasshoppers"),
    ),
    "moths": (("butterfly", "butterflies"), ("moth", "moths")),
    "amphibians": (("frog", "frogs"), ("toad", "toads"), ("newt", "newts")),
    "reptiles": (("turtle", "turtles"), ("lizard", "lizards"), ("tortoise", "tortoises")),
}
"""Countable nouns (singular, plural) in groups whose members can stand for each other (and
share every fact a problem might count on: legs, class of animal, what they are for)."""

AMBIGUOUS_SINGULAR = frozenset(
    split_words("orange plum peach candy chocolate caramel toffee cricket painting drawing dress")
)
"""Singulars that are also another word (a colour, a mass noun, a sport, a verb): the object is
only renamed when its singular does not occur, so only the plural ever is."""

ANIMAL_GROUPS = frozenset(
    (
        "small pets",
        "young pets",
        "milk animals",
        "riding animals",
        "wool animals",
        "poultry",
        "small birds",
        "big cats",
        "grazers",
        "large animals",
        "canines",
        "insects",
        "moths",
        "rodents",
        "amphibians",
        "reptiles",
    )
)

EXTRA_THINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "extra goods": (
        ("book", "books"),
        ("ball", "balls"),
        ("egg", "eggs"),
        ("shoe", "shoes"),
        ("card", "cards"),
        ("coin", "coins"),
        ("candle", "candles"),
        ("toy", "toys"),
        ("flower", "flowers"),
        ("tree", "trees"),
        ("plant", "plants"),
        ("ticket", "tickets"),
        ("pizza", "pizzas"),
        ("bicycle", "bicycles"),
        ("car", "cars"),
        ("rock", "rocks"),
        ("plate", "plates"),
        ("bowl", "bowls"),
        ("mug", "mugs"),
        ("balloon", "balloons"),
        ("shell", "shells"),
        ("sandcastle", "sandcastles"),
        ("marble", "marbles"),
        ("bead", "beads"),
        ("button", "buttons"),
    ),
    "extra animals": (
        ("bird", "birds"),
        ("fish", "fish"),
        ("sheep", "sheep"),
        ("snail", "snails"),
        ("monkey", "monkeys"),
        ("spider", "spiders"),
    ),
}
"""Things a distractor may be about but `rename` never swaps (their numbers matter: legs,
pairs, coin values), reused only as they are, never for a group-mate."""

CONTAINER_GROUPS = frozenset(("boxes", "bags", "pails", "jars", "bottles"))
"""Counting units rather than things: renamed, but never what a distractor is about."""

GUARD_PHRASES = (
    "spelling bee",
    "corn dog",
    "hot dog",
    "piggy bank",
    "chicken pox",
    "couch potato",
    "pie chart",
    "pen pal",
    "bee line",
    "cat walk",
    "dog days",
    "box office",
    "sugar cane",
    "apple watch",
    "big apple",
    "hat trick",
    "rabbit hole",
    "toy box",
    "box turtle",
    "horse power",
    "guinea pig",
    "teddy bear",
    "jelly bean",
    "bag of chips",
    "lily pad",
    "lily pads",
    "lunch box",
    "shoe box",
    "ice box",
    "mail box",
    "juice box",
    "tool box",
    "gift box",
    "sand box",
    "post box",
    "box car",
    "bag lunch",
    "book bag",
    "tea bag",
    "sleeping bag",
    "bean bag",
)
"""Phrases in which a lexicon word is not the object it names (or is part of a longer entry):
a word inside one is left alone unless the whole phrase is itself an entry."""

_BREEDS = split_words(
    """
    breed breeds bark barks barking leash kennel fetch poodle poodles pomeranian pomeranians
    terrier terriers retriever retrievers bulldog bulldogs beagle beagles labrador labradors
    chihuahua chihuahuas dachshund dachshunds husky huskies collie collies mastiff mastiffs
    papillon papillons siamese persian tabby meow purr litter
    """
)
_MEAT = split_words(
    """
    cook cooks cooking cooked oven meat grill grilled fried roast roasted nuggets wings breast
    breasts sandwich sandwiches soup drumstick drumsticks
    """
)
CONFLICTS: dict[str, tuple[str, ...]] = {
    "potato": split_words("hash fries chips mashed baked"),
    "lemon": split_words("lemonade"),
    "grape": split_words("wine raisin raisins jelly"),
    "tomato": split_words("ketchup sauce salsa"),
    "cucumber": split_words("pickle pickles"),
    "cabbage": split_words("coleslaw sauerkraut"),
    "apple": split_words("cider"),
    "pen": ("animals", "fence", "pig", "pigs", "sheep", "farm", "enclosure"),
    "box": ("volume", "dimensions", "rectangular", "cube", "edges", "faces"),
    "crate": ("volume", "dimensions", "rectangular", "cube", "edges", "faces"),
    "puppy": _BREEDS + split_words("dog dogs cat cats rabbit rabbits"),
    "kitten": _BREEDS + split_words("dog dogs cat cats rabbit rabbits"),
    "bunny": _BREEDS + split_words("dog dogs cat cats rabbit rabbits"),
    "cat": _BREEDS + split_words("kitten kittens rodent rodents"),
    "rabbit": _BREEDS + split_words("burrow carrot carrots bunny bunnies rodent rodents"),
    "hamster": _BREEDS,
    "ferret": _BREEDS + split_words("rodent rodents"),
    "butterfly": ("caterpillar", "caterpillars", "cocoon", "cocoons", "monarch"),
    "chicken": _MEAT + split_words("nugget chick chicks"),
    "hen": _MEAT + split_words("chick chicks"),
    "turkey": _MEAT + split_words("thanksgiving chick chicks"),
    "duck": _MEAT + split_words("rubber duckling ducklings"),
    "goose": _MEAT + split_words("gosling goslings"),
    "cow": split_words("calf calves bull bulls"),
    "goat": split_words("kid kids"),
    "horse": split_words("foal foals"),
}
"""Words that, anywhere in the text, make an object's other sense (or a fact only it has)
likely: the object (keyed by its singular) is not renamed then."""

CITIES: dict[str, tuple[str, ...]] = {
    "us": split_words(
        """
        Boston Chicago Seattle Denver Miami Atlanta Portland Detroit Baltimore Cleveland
        Nashville Memphis Pittsburgh Sacramento Tampa Omaha Tucson Albuquerque Milwaukee
        Minneapolis Charleston Rochester Raleigh Richmond Houston Dallas
        """
    )
    + ("New York", "Los Angeles", "San Francisco", "San Diego", "Las Vegas"),
    "world": split_words(
        """
        London Paris Tokyo Rome Berlin Madrid Toronto Vienna Prague Dublin Lisbon Amsterdam
        Cairo Mumbai Delhi Beijing Shanghai Seoul Bangkok Nairobi Lagos Lima Oslo Stockholm
        Athens Istanbul Melbourne Toulouse Lyon Munich Milan Barcelona Manila Jakarta Hanoi
        Montreal Vancouver Helsinki Warsaw Budapest Copenhagen Brussels Zurich Geneva
        """
    ),
}
"""Cities, swapped only inside their group."""

CITY_CONFLICTS = ("time zone", "time difference", "ahead of", "behind", "timezone")

# -- distractor vocabulary --------------------------------------------------------------------

UNITS: dict[str, tuple[tuple[str, str], ...]] = {
    "time": (
        ("minute", "minutes"),
        ("hour", "hours"),
        ("day", "days"),
        ("week", "weeks"),
        ("month", "months"),
        ("second", "seconds"),
    ),
    "distance": (
        ("mile", "miles"),
        ("kilometer", "kilometers"),
        ("kilometre", "kilometres"),
        ("meter", "meters"),
        ("metre", "metres"),
        ("foot", "feet"),
        ("yard", "yards"),
        ("inch", "inches"),
        ("centimeter", "centimeters"),
    ),
    "weight": (
        ("pound", "pounds"),
        ("kilogram", "kilograms"),
        ("gram", "grams"),
        ("ounce", "ounces"),
        ("ton", "tons"),
    ),
    "volume": (
        ("liter", "liters"),
        ("litre", "litres"),
        ("gallon", "gallons"),
        ("quart", "quarts"),
        ("milliliter", "milliliters"),
    ),
}
"""Units a problem may use, by dimension; a distractor reuses the one the problem uses."""

PEOPLE_NOUNS = split_words(
    """
    people students children kids players workers guests employees customers visitors teachers
    boys girls adults passengers tourists runners volunteers fans
    """
)
"""Plural nouns for groups of people (not relations like friends or members, which would
read as the problem's own): a distractor may count other people of the same kind."""

TIMES = (
    "last year",
    "last summer",
    "last winter",
    "last spring",
    "the year before",
    "a few years ago",
    "last month",
)
"""When a distractor's event happened: always before the problem's time, so it cannot count."""

ELSEWHERE = (
    "in another town",
    "across the country",
    "in a different city",
    "far away",
    "in a town nearby",
    "on the other side of the country",
)
"""Where a distractor's subject lives or acts: never the problem's own place."""

PRONOUNS = {
    "male": frozenset(split_words("he him his himself")),
    "female": frozenset(split_words("she her hers herself")),
}
PLURAL_PRONOUNS = frozenset(
    split_words("they them their theirs themselves these those it its itself")
)

CONTINUATIONS = (
    "then",
    "after that",
    "after this",
    "after which",
    "afterwards",
    "afterward",
    "later",
    "next",
    "also",
    "meanwhile",
    "finally",
    "however",
    "but",
    "and",
    "so",
    "thus",
    "therefore",
    "hence",
    "this",
    "that",
    "these",
    "those",
    "such",
    "each of",
    "each one",
    "both",
    "of",
    "half",
    "together",
    "in addition",
    "additionally",
    "besides",
    "instead",
    "otherwise",
    "another",
    "the other",
    "the others",
    "the rest",
    "the remaining",
    "the remainder",
    "the second",
    "the third",
    "the next",
    "the same",
    "plus",
    "moreover",
    "furthermore",
    "overall",
    "altogether",
    "in total",
    "all",
    "everyone",
    "none",
    "neither",
    "either",
    "one of",
    "some of",
    "most of",
    "only",
    "including",
    "at that",
    "during that",
    "from there",
    "similarly",
    "likewise",
    "again",
)
"""How a sentence that leans on the one before it starts: no sentence is inserted before it."""

NUMBER_WORDS: dict[str, float] = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1000,
    "million": 1_000_000,
    "dozen": 12,
    "dozens": 12,
    "half": 0.5,
    "twice": 2,
    "double": 2,
    "triple": 3,
    "thrice": 3,
    "quarter": 0.25,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "first": 1,
    "second": 2,
    "pair": 2,
    "couple": 2,
    "score": 20,
}
"""Numbers written as words: a distractor's numbers must differ from these too."""


def _unique(names: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return tuple(seen)


GENDER: dict[str, str] = {
    **{n: "female" for n in FEMALE},
    **{n: "male" for n in MALE},
    **{n: "unisex" for n in UNISEX},
}
"""Each known first name's gender (unisex where it is given to both)."""


@lru_cache(maxsize=8)
def new_name_pool(gender: str) -> tuple[str, ...]:
    """Names that may be introduced for a person of this gender: no ordinary words, places,
    brands or theorem names."""
    source = {"female": FEMALE, "male": MALE, "unisex": UNISEX}[gender]
    banned = COMMON_WORD_NAMES | PLACE_LIKE_NAMES | FORBIDDEN_NEW
    return _unique(n for n in source if n not in banned and GENDER.get(n) == gender)


def object_forms() -> dict[str, tuple[str, str, str]]:
    """Every object word form -> (group, singular, plural)."""
    out: dict[str, tuple[str, str, str]] = {}
    for group, pairs in OBJECT_GROUPS.items():
        for sg, pl in pairs:
            out[sg] = (group, sg, pl)
            out[pl] = (group, sg, pl)
    return out


__all__ = [
    "AMBIGUOUS_SINGULAR",
    "split_words",
    "ANIMAL_GROUPS",
    "CITIES",
    "CITY_CONFLICTS",
    "COMMON_WORD_NAMES",
    "CONTAINER_GROUPS",
    "CONFLICTS",
    "CONTINUATIONS",
    "ELSEWHERE",
    "EXTRA_THINGS",
    "FEMALE",
    "FORBIDDEN_NEW",
    "GENDER",
    "GUARD_PHRASES",
    "MALE",
    "NAME_SUFFIXES",
    "NUMBER_WORDS",
    "OBJECT_GROUPS",
    "PEOPLE_NOUNS",
    "PLACE_LIKE_NAMES",
    "PLURAL_PRONOUNS",
    "PRONOUNS",
    "SURNAMES",
    "SURNAME_TITLES",
    "TIMES",
    "TITLES",
    "UNISEX",
    "UNITS",
    "new_name_pool",
    "object_forms",
]
