package loadgen

// words is the vocabulary of generated prompts: common words of TinyStories-like text,
// so that a small story model's tokenizer sees familiar pieces. Changing it changes every
// prompt set; the prompt tests pin its length and the prompts of fixed seeds.
var words = [...]string{
	"once", "upon", "a", "time", "there", "was", "little", "girl", "named", "lily",
	"she", "loved", "to", "play", "with", "her", "toys", "in", "the", "park",
	"one", "day", "saw", "big", "red", "ball", "and", "wanted", "it", "he",
	"boy", "tim", "his", "mom", "said", "you", "can", "have", "fun", "but",
	"be", "careful", "they", "went", "outside", "sun", "is", "shining", "bright", "sky",
	"blue", "happy", "sad", "friend", "dog", "cat", "bird", "tree", "flower", "garden",
	"house", "car", "truck", "boat", "water", "fish", "swim", "run", "jump", "laugh",
	"smile", "cry", "help", "share", "kind", "nice", "good", "bad", "very", "so",
	"then", "after", "that", "all", "together", "again", "home", "mommy", "daddy", "sister",
	"brother", "baby", "small", "tall", "long", "soft", "hard", "warm", "cold", "rain",
	"snow", "wind", "cake", "cookie", "apple", "milk", "eat", "drink", "sleep", "bed",
	"night", "moon", "star", "dream", "light", "dark", "room", "door", "window", "box",
	"found", "lost", "look", "looked", "see", "find", "made", "make", "new", "old",
	"best", "every", "morning", "school", "teacher", "book", "read", "draw", "paint", "color",
	"green", "yellow", "pink", "purple", "brown", "white", "black", "funny", "silly", "brave",
	"scared", "surprised", "excited", "proud", "thank", "please", "sorry", "yes", "no", "because",
	"wished", "asked", "replied", "shouted", "whispered", "ran", "walked", "jumped", "played", "climbed",
	"hill", "forest", "river", "beach", "sand", "shell", "rock", "stick", "leaf", "bug",
	"bunny", "bear", "lion", "monkey", "duck", "frog", "horse", "cow", "pig", "sheep",
	"gave", "took", "shared", "learned", "lesson", "important", "always", "never", "favorite", "special",
}
